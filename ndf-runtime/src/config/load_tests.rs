//! The loaders: environment, TOML, layered, and the effective
//! configuration written back.

use std::time::Duration;

use super::Config;

#[test]
fn a_zero_period_is_refused_alike_in_code_in_the_environment_and_in_toml() {
    for key in [
        "flush_interval",
        "sync_interval",
        "timeline_interval",
        "learning_interval",
        "break_duration",
        "latency_alert",
        "evict_idle_after",
    ] {
        let env = format!("NDF_{}", key.to_ascii_uppercase());
        let err = Config::from_vars([(env.as_str(), "0s")]).unwrap_err();
        assert_eq!(err.key, env);
        assert!(err.reason.contains("longer than zero"), "{err}");
        let err = Config::from_toml_str(&format!("{key} = \"0ms\"")).unwrap_err();
        assert_eq!(err.key, key);
        assert!(err.reason.contains("longer than zero"), "{err}");
    }
    let err = Config {
        flush_interval: Duration::ZERO,
        ..Config::default()
    }
    .validate()
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`flush_interval` = 0ns: must be longer than zero, such as `30s` or `250ms`"
    );
    let err = Config {
        flush_every: 0,
        ..Config::default()
    }
    .validate()
    .unwrap_err();
    assert_eq!(err.key, "flush_every");
}

#[test]
fn a_zero_resource_wait_means_never_wait_on_every_path() {
    let config = Config::from_vars([("NDF_RESOURCE_WAIT", "0")]).unwrap();
    assert_eq!(config.resource_wait, Duration::ZERO);
    assert!(Config::from_toml_str("resource_wait = \"0s\"").is_ok());
    assert!(
        Config {
            resource_wait: Duration::ZERO,
            ..Config::default()
        }
        .validate()
        .is_ok()
    );
    let err = Config::from_vars([("NDF_RESOURCE_WAIT", "-1")]).unwrap_err();
    assert!(err.reason.contains("expected a duration"), "{err}");
}

#[test]
fn deployment_env_picks_the_presets_and_ndf_vars_override() {
    let c = Config::from_vars([
        ("DEPLOYMENT_ENV", "Production"),
        ("NDF_STEP_TIMEOUT", "45s"),
        ("NDF_MIN_SAMPLES", "25"),
        ("PATH", "/usr/bin"),
    ])
    .unwrap();
    assert_eq!(c.confidence_threshold.to_bits(), 0.85f64.to_bits());
    assert_eq!(c.step_timeout, Duration::from_secs(45));
    assert_eq!(c.min_samples, 25);
}

#[test]
fn the_timeline_keys_are_read_and_checked() {
    let c = Config::from_vars([
        ("NDF_TIMELINE_INTERVAL", "10s"),
        ("NDF_TIMELINE_POINTS", "360"),
        ("NDF_RETENTION", "7days"),
        ("NDF_LEARNING_BATCH", "64"),
        ("NDF_LEARNING_INTERVAL", "20ms"),
        ("NDF_MAX_ENTRIES", "500"),
    ])
    .unwrap();
    assert_eq!(c.max_entries, 500);
    assert_eq!(c.learning_batch, 64);
    assert_eq!(c.learning_interval, Duration::from_millis(20));
    assert_eq!(c.timeline_interval, Duration::from_secs(10));
    assert_eq!(c.timeline_points, 360);
    assert_eq!(c.retention, Duration::from_hours(7 * 24));
    let err = Config::from_vars([("NDF_TIMELINE_POINTS", "0")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`NDF_TIMELINE_POINTS` = \"0\": expected a whole number of points, at least 1"
    );
    let err = Config::from_toml_str("retention = \"forever\"").unwrap_err();
    assert_eq!(err.key, "retention");
}

#[test]
fn the_gate_keys_are_read_and_checked() {
    let c = Config::from_vars([
        ("NDF_GATE_ALPHA", "0.0005"),
        ("NDF_BREAK_DURATION", "20s"),
        ("NDF_HALF_OPEN_PROBES", "3"),
        ("NDF_EVIDENCE_HALF_LIFE", "1h"),
        ("NDF_RESOURCE_GATING", "true"),
    ])
    .unwrap();
    assert!((c.gate_alpha - 0.0005).abs() < f64::EPSILON);
    assert_eq!(c.break_duration, Duration::from_secs(20));
    assert_eq!(c.half_open_probes, 3);
    assert_eq!(c.evidence_half_life, Duration::from_hours(1));
    assert!(c.resource_gating);
    let t = Config::from_toml_str("resource_gating = true\ngate_alpha = 0.01").unwrap();
    assert!(t.resource_gating);
    assert!((t.gate_alpha - 0.01).abs() < f64::EPSILON);
    let err = Config::from_vars([("NDF_GATE_ALPHA", "1")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`NDF_GATE_ALPHA` = \"1\": expected a number above 0 and below 1, such as 0.001"
    );
    let err = Config::from_vars([("NDF_RESOURCE_GATING", "maybe")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`NDF_RESOURCE_GATING` = \"maybe\": expected `true` or `false`"
    );
    let err = Config::from_toml_str("half_open_probes = 0").unwrap_err();
    assert_eq!(err.key, "half_open_probes");
    let defaults = Config::default();
    assert!(!defaults.resource_gating, "resource gating is opt-in");
    assert_eq!(
        (defaults.break_duration, defaults.half_open_probes),
        (Duration::from_secs(5), 5)
    );
}

#[test]
fn without_deployment_env_it_is_development() {
    let c = Config::from_vars(Vec::<(String, String)>::new()).unwrap();
    assert_eq!(c, Config::default());
}

#[test]
fn an_unknown_deployment_env_is_an_error() {
    let err = Config::from_vars([("DEPLOYMENT_ENV", "qa")]).unwrap_err();
    assert_eq!(err.key, "DEPLOYMENT_ENV");
    assert_eq!(
        err.to_string(),
        "`DEPLOYMENT_ENV` = \"qa\": expected `production`, `staging` or `development`"
    );
}

#[test]
fn a_bad_value_names_the_variable_and_the_value() {
    let err = Config::from_vars([("NDF_CPU_LIMIT", "lots")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`NDF_CPU_LIMIT` = \"lots\": expected a number between 0 and 1"
    );
    let err = Config::from_vars([("NDF_STEP_TIMEOUT", "0s")]).unwrap_err();
    assert_eq!(err.key, "NDF_STEP_TIMEOUT");
    let err = Config::from_toml_str("no_such_key = 1").unwrap_err();
    assert!(err.to_string().contains("unknown key"), "{err}");
}

#[test]
fn other_ndf_variables_are_left_alone_and_near_misses_named() {
    // An application's own variable does not stop the runtime.
    let c = Config::from_vars([("NDF_DB", "/var/lib/app.db"), ("NDF_MIN_SAMPLES", "20")]).unwrap();
    assert_eq!(c.min_samples, 20);
    // A misspelling is ignored too, with a warning naming the key meant.
    assert!(Config::from_vars([("NDF_CONFIDENCE", "0.9")]).is_ok());
    assert_eq!(
        super::env::near_miss("confidence"),
        Some("confidence_threshold")
    );
    assert_eq!(super::env::near_miss("step_timout"), Some("step_timeout"));
    assert_eq!(super::env::near_miss("db"), None);
    assert_eq!(super::env::near_miss("api_token"), None);
}

#[test]
fn a_file_is_layered_between_the_preset_and_the_environment() {
    let dir = std::env::temp_dir().join(format!("ndf-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ndf.toml");
    std::fs::write(
        &path,
        "environment = \"staging\"\nstep_timeout = \"45s\"\ncpu_limit = 0.7\n",
    )
    .unwrap();
    // DEPLOYMENT_ENV picks the preset over the file's `environment`; the
    // variables override the file's keys; the file's other keys stay.
    let c = Config::load_with(
        Some(&path),
        [
            ("DEPLOYMENT_ENV", "production"),
            ("NDF_STEP_TIMEOUT", "50s"),
            ("NDF_MIN_SAMPLES", "30"),
        ],
    )
    .unwrap();
    assert_eq!(c.confidence_threshold.to_bits(), 0.85f64.to_bits());
    assert_eq!(c.step_timeout, Duration::from_secs(50));
    assert_eq!((c.min_samples, c.cpu_limit), (30, 0.7));
    // Without DEPLOYMENT_ENV, the file's environment.
    let c = Config::load_with(Some(&path), Vec::<(String, String)>::new()).unwrap();
    assert_eq!(c.confidence_threshold.to_bits(), 0.75f64.to_bits());
    assert_eq!(c.step_timeout, Duration::from_secs(45));
    // A bad variable names itself, a bad file key the file.
    let err = Config::load_with(Some(&path), [("NDF_CPU_LIMIT", "2")]).unwrap_err();
    assert!(err.to_string().contains("NDF_CPU_LIMIT"), "{err}");
    std::fs::write(&path, "cpu_limit = 2\n").unwrap();
    let err = Config::load_with(Some(&path), Vec::<(String, String)>::new()).unwrap_err();
    assert!(err.to_string().contains("ndf.toml: cpu_limit"), "{err}");
    let none: Option<&std::path::Path> = None;
    let c = Config::load_with(none, [("NDF_MIN_SAMPLES", "7")]).unwrap();
    assert_eq!(c.min_samples, 7);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bare_number_is_not_a_duration() {
    for text in ["45", "1.5"] {
        let err = Config::from_vars([("NDF_STEP_TIMEOUT", text)]).unwrap_err();
        assert_eq!(err.key, "NDF_STEP_TIMEOUT");
        assert!(err.reason.contains("give the unit"), "{err}");
    }
    let err = Config::from_toml_str("step_timeout = 45").unwrap_err();
    assert_eq!(
        err.to_string(),
        "`step_timeout` = \"45\": a bare number is ambiguous; give the unit, such as `45s` or `45ms`"
    );
    assert_eq!(
        Config::from_vars([("NDF_RESOURCE_WAIT", "0")])
            .unwrap()
            .resource_wait,
        Duration::ZERO
    );
}

#[test]
fn values_that_make_no_sense_are_refused() {
    for (var, value, reason) in [
        ("NDF_CPU_LIMIT", "0", "wait for ever"),
        ("NDF_MEMORY_LIMIT", "0", "wait for ever"),
        ("NDF_TIMELINE_INTERVAL", "1ms", "at least 1s"),
        ("NDF_SYNC_INTERVAL", "5ms", "at least 100ms"),
        ("NDF_PRIOR", "0,1", "above 0"),
        ("NDF_PRIOR", "1", "alpha,beta"),
    ] {
        let err = Config::from_vars([(var, value)]).unwrap_err();
        assert_eq!(err.key, var, "{err}");
        assert!(err.to_string().contains(reason), "{err}");
    }
}

#[test]
fn the_prior_is_set_from_the_environment_and_toml() {
    let c = Config::from_vars([("NDF_PRIOR", "9,1")]).unwrap();
    assert_eq!((c.prior.alpha, c.prior.beta), (9.0, 1.0));
    let c = Config::from_toml_str("prior = [2, 0.5]").unwrap();
    assert_eq!((c.prior.alpha, c.prior.beta), (2.0, 0.5));
    let c = Config::from_toml_str("prior = \"3, 3\"").unwrap();
    assert_eq!((c.prior.alpha, c.prior.beta), (3.0, 3.0));
}

#[test]
fn a_domain_table_inherits_the_files_keys() {
    // `domains` sorts before `step_timeout`: the keys still come first.
    let c = Config::from_toml_str(
        "step_timeout = \"7s\"\nconfidence_threshold = 0.7\n[domains.reports]\nmemory = 1024\n[domains.security]\nconfidence_threshold = 0.99\n",
    )
    .unwrap();
    let reports = c.domain_preset("reports").unwrap();
    assert_eq!(
        (
            reports.step_timeout,
            reports.confidence_threshold,
            reports.memory
        ),
        (Duration::from_secs(7), 0.7, 1024)
    );
    // A domain with a preset keeps what the table leaves out.
    let security = c.domain_preset("security").unwrap();
    assert_eq!(
        (
            security.step_timeout,
            security.confidence_threshold,
            security.memory
        ),
        (Duration::from_mins(2), 0.99, 1 << 30)
    );
}

#[test]
fn the_effective_configuration_reads_back_as_itself() {
    let mut production = Config::for_environment(super::Environment::Production)
        .latency_alert(Duration::from_millis(250))
        .retry_budget(0.2)
        .step_timeout(Duration::from_millis(1500));
    production.prior = crate::model::Prior {
        alpha: 2.0,
        beta: 0.5,
    };
    production.retention = Duration::from_hours(24 * 7 + 3);
    for config in [Config::default(), production] {
        let text = config.to_string();
        let back = Config::from_toml_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back, config, "{text}");
        assert!(text.contains("[domains.security]"), "{text}");
    }
}

#[test]
fn toml_sets_keys_and_domains() {
    let c = Config::from_toml_str(
        r#"
        environment = "staging"
        step_timeout = "45s"
        resource_wait = "250ms"
        cpu_limit = 0.7

        [domains.billing]
        confidence_threshold = 0.95
        step_timeout = "10s"
        memory = 268435456

        [domains.security]
        step_timeout = "30s"
        "#,
    )
    .unwrap();
    assert_eq!((c.confidence_threshold, c.cpu_limit), (0.75, 0.7));
    assert_eq!(
        (c.step_timeout, c.resource_wait),
        (Duration::from_secs(45), Duration::from_millis(250))
    );
    let billing = c.domain_preset("billing").unwrap();
    assert_eq!(
        (
            billing.confidence_threshold,
            billing.step_timeout,
            billing.memory
        ),
        (0.95, Duration::from_secs(10), 256 << 20)
    );
    let security = c.domain_preset("security").unwrap();
    assert_eq!(
        (security.confidence_threshold, security.step_timeout),
        (0.9, Duration::from_secs(30))
    );
}

#[test]
fn toml_errors_name_the_key() {
    let err = Config::from_toml_str("learning_rate = 2.0").unwrap_err();
    assert_eq!(
        err.to_string(),
        "`learning_rate` = \"2\": expected a number between 0 and 1"
    );
    let err = Config::from_toml_str("[domains.billing]\nmemory = \"lots\"").unwrap_err();
    assert_eq!(err.key, "domains.billing.memory");
    let err = Config::from_toml_str("step_timeout = [1]").unwrap_err();
    assert_eq!(err.key, "step_timeout");
    let err = Config::from_toml_str("environment = \"prd\"").unwrap_err();
    assert_eq!(err.key, "environment");
    let err = Config::from_toml_str("min_samples = 3\nnot toml at all =").unwrap_err();
    assert_eq!(err.key, "(toml, line 2, column 5)", "{err}");
}

#[test]
fn a_missing_file_names_the_path() {
    let err = Config::from_toml_file("/nonexistent/ndf.toml").unwrap_err();
    assert!(err.to_string().contains("/nonexistent/ndf.toml"), "{err}");
}
