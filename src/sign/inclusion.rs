//! A Rekor inclusion proof and the checkpoint it leads to: the entry's leaf hash, hashed up
//! the audit path to the root (RFC 9162 §2.1.3.2, RFC 6962 hashing), and a checkpoint (a signed
//! note, c2sp.org `tlog-checkpoint` and `signed-note`) of that size and root, signed by the
//! log's key from the trusted root: ECDSA for Rekor v1, Ed25519 for Rekor v2, whose signature
//! line names the checkpoint's origin. What sigstore-go's `VerifyInclusion` and
//! `VerifyCheckpoint` check.

use crate::error::Reason;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use super::trusted_root::LogKey;

/// The proof as a bundle carries it (`inclusionProof`), decoded.
pub struct Proof<'a> {
    pub log_index: u64,
    pub tree_size: u64,
    pub root_hash: Vec<u8>,
    pub hashes: Vec<Vec<u8>>,
    pub checkpoint: &'a str,
}

fn node(left: &[u8], right: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().to_vec()
}

/// RFC 6962's leaf hash of an entry's canonicalized body.
pub fn leaf_hash(body: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(body);
    h.finalize().to_vec()
}

/// The root the audit path leads to from `leaf` at `index` in a tree of `size` (RFC 9162).
fn root_from(index: u64, size: u64, leaf: Vec<u8>, path: &[Vec<u8>]) -> Result<Vec<u8>, Reason> {
    if index >= size {
        return Err(format!("its inclusion proof puts entry {index} in a tree of {size}").into());
    }
    let (mut fnode, mut snode, mut r) = (index, size - 1, leaf);
    for p in path {
        if snode == 0 {
            return Err("its inclusion proof is longer than its tree is deep".into());
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err("its inclusion proof is shorter than its tree is deep".into());
    }
    Ok(r)
}

/// Verifies that `body` is in the log at the proof's index, and that the log signed that tree.
pub fn verify(body: &[u8], proof: &Proof<'_>, log: &LogKey) -> Result<(), Reason> {
    let root = root_from(
        proof.log_index,
        proof.tree_size,
        leaf_hash(body),
        &proof.hashes,
    )?;
    if root != proof.root_hash {
        return Err("its inclusion proof does not lead to the root it names".into());
    }
    let (size, note_root) = checkpoint(proof.checkpoint, log)?;
    if size != proof.tree_size || note_root != proof.root_hash {
        return Err(format!(
            "its checkpoint is of a tree of {size} with another root than the proof's ({})",
            proof.tree_size
        )
        .into());
    }
    Ok(())
}

/// A checkpoint's tree size and root hash, once its signature by `log` verifies.
fn checkpoint(text: &str, log: &LogKey) -> Result<(u64, Vec<u8>), Reason> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let (body, sigs) = text
        .split_once("\n\n")
        .ok_or("its checkpoint is not a signed note")?;
    let signed = format!("{body}\n");
    let mut lines = body.lines();
    let (origin, size, root) = (lines.next(), lines.next(), lines.next());
    let size: u64 = size
        .and_then(|s| s.parse().ok())
        .ok_or("its checkpoint has no tree size")?;
    let root = root
        .and_then(|r| b64.decode(r).ok())
        .ok_or("its checkpoint has no root hash")?;
    let hint = hex::decode(&log.log_id).map_err(|e| e.to_string())?;
    for line in sigs.lines() {
        let Some(rest) = line.strip_prefix("\u{2014} ") else {
            continue;
        };
        let Some((name, sig)) = rest
            .rsplit_once(' ')
            .and_then(|(n, s)| Some((n, b64.decode(s).ok()?)))
        else {
            continue;
        };
        if sig.len() > 4 && hint.len() >= 4 && sig[..4] == hint[..4] {
            let verified = if log.details == "PKIX_ED25519" {
                // A signed note's Ed25519 key is named: the line's name is the checkpoint's
                // origin, which the key ID binds.
                if Some(name) != origin {
                    return Err(format!(
                        "its checkpoint is signed as {name}, not as its origin {}",
                        origin.unwrap_or("")
                    )
                    .into());
                }
                ed25519_verify(&log.spki, signed.as_bytes(), &sig[4..])
            } else {
                super::rekor::ecdsa_verify(&log.spki, signed.as_bytes(), &sig[4..])
            };
            verified.map_err(|e| {
                format!(
                    "its checkpoint's signature does not verify with the key of {}: {e}",
                    log.base_url
                )
            })?;
            return Ok((size, root));
        }
    }
    Err(format!(
        "its checkpoint carries no signature by the log {}",
        log.base_url
    )
    .into())
}

/// An Ed25519 signature by the key of DER SPKI `spki` over `data`.
fn ed25519_verify(spki: &[u8], data: &[u8], sig: &[u8]) -> Result<(), Reason> {
    use ed25519_dalek::pkcs8::DecodePublicKey as _;
    let key = ed25519_dalek::VerifyingKey::from_public_key_der(spki)
        .map_err(|e| format!("not an Ed25519 key ({e})"))?;
    let sig = ed25519_dalek::Signature::from_slice(sig).map_err(|e| e.to_string())?;
    // Cofactorless, canonical S: what Go's `crypto/ed25519.Verify` checks (`verify_strict`
    // would also refuse weak keys Go accepts).
    ed25519_dalek::Verifier::verify(&key, data, &sig).map_err(|e| Reason(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9162's Merkle tree hash, by its recursive definition, for checking the walk.
    fn mth(leaves: &[Vec<u8>]) -> Vec<u8> {
        match leaves.len() {
            1 => leaves[0].clone(),
            n => {
                let k = n.next_power_of_two() / 2;
                node(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    /// RFC 9162's PATH(m, D[n]).
    fn path(m: usize, leaves: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let n = leaves.len();
        if n == 1 {
            return Vec::new();
        }
        let k = n.next_power_of_two() / 2;
        if m < k {
            let mut p = path(m, &leaves[..k]);
            p.push(mth(&leaves[k..]));
            p
        } else {
            let mut p = path(m - k, &leaves[k..]);
            p.push(mth(&leaves[..k]));
            p
        }
    }

    #[test]
    fn every_leaf_of_trees_up_to_17_walks_to_the_root() {
        for n in 1..=17usize {
            let leaves: Vec<Vec<u8>> = (0..n).map(|i| leaf_hash(&[i as u8])).collect();
            let root = mth(&leaves);
            for m in 0..n {
                let got = root_from(m as u64, n as u64, leaves[m].clone(), &path(m, &leaves));
                assert_eq!(got.as_ref(), Ok(&root), "leaf {m} of {n}");
                if n > 1 {
                    let mut bad = path(m, &leaves);
                    bad[0][0] ^= 1;
                    assert_ne!(
                        root_from(m as u64, n as u64, leaves[m].clone(), &bad).ok(),
                        Some(root.clone())
                    );
                }
            }
        }
    }
}
