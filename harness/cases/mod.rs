//! Behaviour trials, grouped by what they prove.

mod archives;
mod auth;
mod boot;
mod build;
mod checks;
pub mod cli;
mod consumers;
mod conveniences;
mod cosign;
mod errors;
mod factory;
pub(crate) mod faults;
mod flatten;
mod fleet;
mod forgery;
mod gate;
mod github;
mod golden;
mod hostile;
mod imager;
mod local;
mod manifests;
mod promote;
mod pull;
pub(crate) mod referrers;
mod release;
mod reports;
mod schematic_gen;
mod signatures;
mod talos;
mod unpack;
mod versions;
mod warm;
mod workflows;
mod zboot;

use libtest_mimic::Trial;

use crate::trial;

macro_rules! trials {
    ($($module:ident :: $name:ident),* $(,)?) => {
        vec![$(trial(concat!(stringify!($module), "::", stringify!($name)), $module::$name)),*]
    };
}

pub fn all() -> Vec<Trial> {
    trials![
        archives::archives_written_by_skopeo_read_as_their_layout,
        auth::basic_auth_credentials_come_from_the_docker_config,
        auth::credential_helper_supplies_the_password,
        build::bad_inputs_fail_before_anything_is_pushed,
        build::build_push_verify_and_independent_readers,
        build::matchbox_output_and_the_bastion_check,
        build::two_builds_give_the_same_digest,
        build::uki_base_and_several_arches,
        gate::a_build_that_fails_its_spec_pushes_nothing,
        workflows::workflow_commands_run_as_written_from_the_repository_root,
        gate::a_spec_path_gives_one_verdict_however_it_is_written,
        local::a_tampered_layout_blob_fails_warm_and_cold,
        local::a_layout_of_fifos_devices_or_outward_symlinks_is_refused_at_once,
        local::a_closed_pipe_ends_tdg_quietly,
        forgery::each_forged_evidence_field_is_named,
        forgery::a_bundled_or_fleet_spec_quotes_no_outside_file,
        forgery::one_bad_blob_is_one_line_of_differences,
        release::build_verify_reports_outcomes_in_json,
        release::release_tags_never_move,
        release::concurrent_pushes_of_one_release_tag_leave_one_winner,
        promote::promote_copies_every_platform_and_guards_tags,
        promote::promote_is_gated_by_a_spec_and_a_push_preflight,
        promote::a_moved_tag_is_reported_moved_when_its_read_back_fails,
        fleet::fleet_audit_names_drift_and_missing_tags,
        fleet::a_partitioned_audit_merges_into_the_whole,
        fleet::the_projects_fleet_file_audits_the_published_variants,
        imager::microcode_goes_into_an_uncompressed_cpio_before_the_base,
        boot::built_variants_boot_with_their_extensions,
        zboot::a_real_zboot_kernel_is_read_and_boots_through_uefi,
        unpack::tdg_reads_the_initramfs_the_kernel_unpacks,
        zboot::an_image_built_on_a_zboot_base_boots_and_is_judged,
        boot::boot_failures_are_named_in_the_kernels_words,
        boot::a_corrupted_segment_is_caught_by_the_kernel,
        boot::a_uki_boots_under_uefi_firmware,
        boot::matchbox_output_boots_with_its_profile,
        boot::an_interrupted_boot_leaves_no_qemu_behind,
        boot::amd64_boots_under_q35,
        imager::a_base_with_extensions_keeps_them,
        imager::modules_for_another_kernel_are_refused,
        auth::malformed_docker_config_is_a_clear_error,
        checks::every_check_of_the_real_spec_fails_on_a_broken_image,
        conveniences::container_structure_test_style_checks,
        conveniences::quiet_color_and_a_file_report_beside_the_human_one,
        conveniences::completions_and_a_man_page,
        conveniences::digest_and_ls_agree_with_skopeo,
        github::annotations_and_a_step_summary_in_github_actions,
        checks::remaining_check_kinds_fail_with_short_messages,
        errors::bad_spec_names_file_line_column_and_exits_2,
        errors::connection_refused_names_the_host,
        errors::missing_spec_file_exits_2,
        errors::pinned_digest_reference_that_does_not_exist_is_an_error,
        errors::unknown_repository_is_a_clear_error,
        errors::unknown_tag_is_a_clear_error,
        factory::build_takes_kernel_and_initramfs_from_the_factory,
        factory::factory_urls_in_human_and_json,
        factory::release_dry_run_validates_offline,
        factory::release_failures_write_nothing,
        factory::release_online_against_a_loopback_factory,
        factory::schematic_cli_prints_ids_and_located_errors,
        factory::schematic_ids_match_go_yaml_v4_on_generated_schematics,
        manifests::manifests_decode_as_talos_decodes_them,
        versions::version_ranges_match_blang_semver,
        flatten::diff_id_mismatch_and_dot_whiteouts_are_refused_like_umoci,
        flatten::a_deep_tree_is_listed_in_linear_time,
        flatten::a_file_reached_through_a_lower_layers_symlink_is_checked,
        flatten::exports_keep_hard_links_as_umoci_does,
        flatten::export_matches_tree_and_stays_inside_the_directory,
        flatten::tdg_pushed_image_reads_back_in_skopeo_and_umoci,
        flatten::tree_matches_umoci_unpack_of_skopeo_pushed_image,
        golden::an_oversized_golden_is_never_copied_into_evidence,
        golden::golden_review_bless_and_ci,
        hostile::a_signal_mid_export_leaves_no_temporaries,
        faults::credentials_never_go_to_a_plain_http_realm_elsewhere,
        faults::a_faulty_registry_s_bodies_are_capped_while_read,
        faults::a_stalling_or_dripping_registry_times_out,
        faults::a_tag_list_that_pages_forever_or_elsewhere_is_refused,
        hostile::export_checks_its_directory_first_and_caps_what_it_writes,
        hostile::hostile_files_end_in_short_errors_in_little_memory,
        hostile::a_million_entries_and_long_names_stay_under_256_mib,
        golden::goldens_outside_the_repository_are_refused,
        golden::redactions_mask_volatile_fields,
        golden::report_golden_redacts_dates_and_catches_changes,
        golden::unreferenced_golden_is_reported,
        pull::corrupted_cache_blob_is_caught_evicted_and_fetched_again,
        consumers::consumers_accept_gzip_and_plain_tar_layers_and_refuse_zstd_ones,
        warm::a_warm_run_reads_no_layer_and_a_corrupt_cache_is_never_used,
        signatures::keyed_signatures_verify_offline_and_each_fault_is_named,
        cosign::cosign_3_keyed_signatures_without_a_log,
        signatures::keyless_signatures_verify_by_identity_and_issuer,
        referrers::build_inputs_are_verified_before_anything_is_built,
        referrers::audit_specs_accept_the_release_workflow_and_refuse_a_fork,
        referrers::bundles_in_referrers_verify_signatures_and_provenance,
        pull::docker_media_types_pushed_by_tdg_verify,
        pull::index_selects_the_requested_platform,
        pull::layout_mirror_and_tdg_mirror_env,
        pull::second_run_fetches_no_blob,
        pull::tampered_layout_blob_is_an_error,
        pull::tampered_registry_blob_is_an_error_and_never_cached,
        reports::demo_verifies_offline_and_a_broken_demo_fails,
        reports::evidence_bundle_rechecks_offline,
        reports::json_report_carries_every_outcome,
        reports::json_report_validates_against_its_schema,
        reports::junit_report_passes_the_junit_schema,
        reports::junit_report_parses_and_counts_failures,
        reports::schema_command_prints_the_committed_schema,
        reports::terminal_bars_and_colour_follow_tty_no_color_and_ci,
        reports::tree_prints_sorted_listing,
        talos::extension_images_are_checked_against_what_talos_accepts,
        talos::negative_fixtures_fail_the_real_specs_with_specific_messages,
        talos::reference_tools_read_what_tdg_writes,
        talos::tdg_reads_an_initramfs_built_by_cpio_zstd_and_mksquashfs,
        talos::uki_sections_are_checked_and_read_by_objdump,
        workflows::workflows_parse_and_name_real_tdg_commands,
        workflows::fuzz_targets_build_against_the_library,
        workflows::the_action_installs_a_checked_release_and_runs_tdg,
    ]
}
