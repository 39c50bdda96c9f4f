
#[test]
fn a_malformed_log_filter_is_reported_not_silently_replaced() {
    let out = hwsigner(&["completions", "bash"]).env("RUST_LOG", "sign=notalevel").output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.contains("RUST_LOG is not a log filter"), "{err}");
    let out = hwsigner(&["completions", "bash"]).env("RUST_LOG", "debug").output().expect("run");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("RUST_LOG"));
}
