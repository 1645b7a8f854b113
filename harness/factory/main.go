// A stand-in Image Factory for tdg's tests, written against Go's own YAML library so that it
// computes schematic IDs independently of tdg: the schematic is decoded with go.yaml.in/yaml/v4
// (unknown fields rejected; the first document only) and marshalled back with it, and the ID is
// the SHA-256 of those bytes, the way the factory derives it (image-factory
// pkg/schematic/schematic.go). It is also the reference for Talos's version ranges,
// evaluated with blang/semver/v4 itself. Built by the test harness with Debian's golang-go and
// golang-github-blang-semver-dev, and sid's golang-go.yaml-yaml-v4-dev (4.0.0~rc6, which
// .ci/fetch-newer unpacks into target/debian/go-yaml-v4) in GOPATH mode; no network needed.
//
//	factory canonical          schematic on stdin -> canonical YAML on stdout (exit 1 on error)
//	factory batch              JSON strings, one a line, on stdin -> {"ok": canonical} | {"err": msg}
//	factory ranges             {"range","talos"} lines on stdin -> {"ok": bool} | {"err": msg}, as
//	                           Talos's validateConstraints decides (v before a digit dropped from
//	                           the range, the Talos version read tolerantly and cut to its core)
//	factory serve -root DIR    HTTP on 127.0.0.1; prints "http://127.0.0.1:PORT" when ready
//
// serve answers POST /schematics (201 {"id": ...}, 400 with the decoder's error), serves
// GET /image/<id>/<version>/<file> and /pxe/... from DIR/<file> for schematics posted before,
// and misbehaves on request: -post no-id|wrong-id|fail, -download truncate|abort|missing.
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/blang/semver/v4"
	"go.yaml.in/yaml/v4"
)

// The schematic document: field order and tags are the canonical form, in the factory's order
// (image-factory pkg/schematic/schematic.go): owner (Enterprise) first.
type Schematic struct {
	Owner         string        `yaml:"owner,omitempty"`
	Overlay       Overlay       `yaml:"overlay,omitempty"`
	Customization Customization `yaml:"customization"`
}

type Overlay struct {
	Image   string         `yaml:"image"`
	Name    string         `yaml:"name"`
	Options map[string]any `yaml:"options,omitempty"`
}

type Customization struct {
	EmbeddedMachineConfiguration string           `yaml:"embeddedMachineConfiguration,omitempty"`
	ExtraKernelArgs              []string         `yaml:"extraKernelArgs,omitempty"`
	Meta                         []MetaValue      `yaml:"meta,omitempty"`
	SystemExtensions             SystemExtensions `yaml:"systemExtensions,omitempty"`
	Bootloader                   Bootloader       `yaml:"bootloader,omitempty"`
	SecureBoot                   SecureBoot       `yaml:"secureboot,omitempty"`
	DiskImage                    DiskImage        `yaml:"diskImage,omitempty"`
}

type MetaValue struct {
	Key   uint8  `yaml:"key"`
	Value string `yaml:"value"`
}

type SystemExtensions struct {
	OfficialExtensions []string `yaml:"officialExtensions,omitempty"`
}

type SecureBoot struct {
	EnrollKeys                   string `yaml:"enrollKeys,omitempty"`
	IncludeWellKnownCertificates bool   `yaml:"includeWellKnownCertificates,omitempty"`
}

type DiskImage struct {
	SectorSize uint `yaml:"sectorSize,omitempty"`
}

// Bootloader is an integer enum written as its name; the zero value, none, is omitted.
// Names are looked up as written, then lower-cased, as an enumer-generated type does.
type Bootloader int

var bootloaders = []string{"none", "dual-boot", "sd-boot", "grub"}

func (b Bootloader) MarshalText() ([]byte, error) {
	if int(b) < 0 || int(b) >= len(bootloaders) {
		return nil, fmt.Errorf("bootloader %d out of range", int(b))
	}
	return []byte(bootloaders[b]), nil
}

func (b *Bootloader) UnmarshalText(text []byte) error {
	for _, s := range []string{string(text), strings.ToLower(string(text))} {
		for i, name := range bootloaders {
			if s == name {
				*b = Bootloader(i)
				return nil
			}
		}
	}
	return fmt.Errorf("%s does not belong to Bootloader values", text)
}

func canonical(data []byte) ([]byte, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var s Schematic
	if err := dec.Decode(&s); err != nil {
		return nil, err
	}
	return yaml.Marshal(&s)
}

func id(data []byte) (string, error) {
	c, err := canonical(data)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
	return hex.EncodeToString(sum[:]), nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: factory canonical|batch|serve")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "canonical":
		data, _ := io.ReadAll(os.Stdin)
		out, err := canonical(data)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Stdout.Write(out)
	case "batch":
		batch()
	case "ranges":
		ranges()
	case "manifests":
		manifests()
	case "serve":
		serve(os.Args[2:])
	default:
		fmt.Fprintln(os.Stderr, "unknown command", os.Args[1])
		os.Exit(2)
	}
}

func batch() {
	eachText("batch", func(text string) any {
		c, err := canonical([]byte(text))
		if err != nil {
			return map[string]string{"err": err.Error()}
		}
		return map[string]string{"ok": string(c)}
	})
}

// eachText answers each JSON string read from stdin, one a line, with fn's JSON value.
func eachText(mode string, fn func(text string) any) {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<26)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var text string
		if err := json.Unmarshal(in.Bytes(), &text); err != nil {
			fmt.Fprintln(os.Stderr, mode+": bad input line:", err)
			os.Exit(2)
		}
		out.Encode(fn(text))
	}
}

// Talos's extension manifest (siderolabs/talos pkg/machinery/extensions/metadata.go).
type ExtManifest struct {
	Version  string      `yaml:"version"`
	Metadata ExtMetadata `yaml:"metadata"`
}

type ExtMetadata struct {
	Name          string `yaml:"name"`
	Version       string `yaml:"version"`
	Author        string `yaml:"author"`
	Description   string `yaml:"description"`
	Compatibility struct {
		Talos struct {
			Version string `yaml:"version"`
		} `yaml:"talos"`
	} `yaml:"compatibility"`
	ExtraInfo string `yaml:"extraInfo,omitempty"`
}

// manifests decodes each manifest.yaml as Talos's loadManifest does
// (pkg/machinery/extensions/load.go: one Decoder.Decode, then the version must be v1alpha1).
func manifests() {
	eachText("manifests", func(text string) any {
		var m ExtManifest
		err := yaml.NewDecoder(bytes.NewReader([]byte(text))).Decode(&m)
		if err == nil && m.Version != "v1alpha1" {
			err = fmt.Errorf("unsupported manifest version: %q", m.Version)
		}
		if err != nil {
			return map[string]string{"err": err.Error()}
		}
		md := m.Metadata
		return map[string][]string{"ok": {md.Name, md.Version, md.Author, md.Description, md.Compatibility.Talos.Version, md.ExtraInfo}}
	})
}

// dropV removes a 'v' that stands before a digit, as Talos does to a constraint before
// parsing it.
func dropV(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 'v' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' {
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func ranges() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<26)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var q struct{ Range, Talos string }
		if err := json.Unmarshal(in.Bytes(), &q); err != nil {
			fmt.Fprintln(os.Stderr, "ranges: bad input line:", err)
			os.Exit(2)
		}
		v, err := semver.ParseTolerant(q.Talos)
		if err != nil {
			out.Encode(map[string]string{"err": "talos: " + err.Error()})
			continue
		}
		r, err := semver.ParseRange(dropV(q.Range))
		if err != nil {
			out.Encode(map[string]string{"err": err.Error()})
			continue
		}
		out.Encode(map[string]bool{"ok": r(semver.Version{Major: v.Major, Minor: v.Minor, Patch: v.Patch})})
	}
}

type server struct {
	root     string
	post     string
	download string
	mu       sync.Mutex
	known    map[string]bool
	log      *os.File
}

func serve(args []string) {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	root := fs.String("root", ".", "directory of files served under /image/<id>/<version>/")
	post := fs.String("post", "ok", "ok | no-id | wrong-id | fail")
	download := fs.String("download", "ok", "ok | truncate | abort | missing")
	logPath := fs.String("log", "", "append one line per request to this file")
	fs.Parse(args)
	s := &server{root: *root, post: *post, download: *download, known: map[string]bool{}}
	if *logPath != "" {
		f, err := os.OpenFile(*logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		s.log = f
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("http://%s\n", l.Addr())
	os.Stdout.Sync()
	http.Serve(l, s)
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.log != nil {
		fmt.Fprintf(s.log, "%s %s\n", r.Method, r.URL.Path)
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/schematics":
		s.schematics(w, r)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/image/"):
		s.image(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *server) schematics(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	got, err := id(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.known[got] = true
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch s.post {
	case "fail":
		http.Error(w, "schematic service unavailable", http.StatusServiceUnavailable)
		return
	case "no-id":
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "{}\n")
		return
	case "wrong-id":
		sum := sha256.Sum256(append(body, '!'))
		got = hex.EncodeToString(sum[:])
	}
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]string{"id": got})
}

func (s *server) image(w http.ResponseWriter, r *http.Request) {
	// /image/<id>/<version>/<file>
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/image/"), "/")
	if len(parts) != 3 {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	known := s.known[parts[0]]
	s.mu.Unlock()
	if !known {
		http.Error(w, "schematic ID not found", http.StatusNotFound)
		return
	}
	f, err := os.Open(filepath.Join(s.root, filepath.Base(parts[2])))
	if err != nil || s.download == "missing" {
		http.Error(w, "asset not found", http.StatusNotFound)
		return
	}
	defer f.Close()
	st, _ := f.Stat()
	size := st.Size()
	switch s.download {
	case "truncate":
		// Promise every byte, send half, and hang up.
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		w.WriteHeader(http.StatusOK)
		io.CopyN(w, f, size/2)
		panic(http.ErrAbortHandler)
	case "abort":
		// No length promised (chunked); the stream breaks off without its last chunk.
		w.WriteHeader(http.StatusOK)
		io.CopyN(w, f, size/2)
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.Header().Set("Content-Type", "application/octet-stream")
	io.Copy(w, f)
}
