//! Site policy (step 6) on decisions of the real verifier over the
//! checked-in test vectors, the example policy, and policy errors.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr
)]

use std::path::{Path, PathBuf};

use jobseal_policy::{IssuerRule, Policy, ReplayStore};
use jobseal_verify::{
    Config, CrlPolicy, Decision, InputPolicy, Invocation, Reason, UnixTime, Verifier,
};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn vectors() -> PathBuf {
    root().join("test-vectors")
}

fn index() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(vectors().join("vectors.json")).unwrap()).unwrap()
}

/// The decision of steps 1–5 on a vector, under `policy`'s verifier settings.
fn decide_with(name: &str, policy: &Policy) -> Decision {
    let dir = vectors();
    let index = index();
    let at = UnixTime::parse_rfc3339(index["verify_at"].as_str().unwrap()).unwrap();
    let config = policy.configure(Config {
        ca_dir: dir.join(index["ca_dir"].as_str().unwrap()),
        voms_dir: dir.join(index["voms_dir"].as_str().unwrap()),
        ..Config::default()
    });
    let verifier = Verifier::new(config).unwrap();
    let v = index["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no vector {name}"));
    let inv = Invocation {
        executable: dir.join(v["executable"].as_str().unwrap()),
        arguments: v["arguments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().into())
            .collect(),
        job_dir: dir.join(v["job_dir"].as_str().unwrap()),
    };
    verifier.check_file(&dir.join(v["bundle"].as_str().unwrap()), &inv, at)
}

fn decide(name: &str) -> Decision {
    let d = decide_with(name, &Policy::default());
    assert!(d.is_permit(), "{name}: {} {}", d.code(), d.message);
    d
}

/// A policy from text, as if read from `dir/policy.toml`.
fn policy_in(dir: &Path, text: &str) -> Result<Policy, jobseal_core::Error> {
    Policy::from_toml(text, &dir.join("policy.toml"))
}

fn policy(text: &str) -> Policy {
    policy_in(Path::new("/nonexistent"), text).unwrap()
}

fn code(r: Result<(), jobseal_core::Error>) -> &'static str {
    r.map_or_else(|e| e.reason.code(), |()| "permit")
}

#[test]
fn the_example_policy_loads() {
    let path = root().join("examples/policy.toml");
    let p = Policy::load(&path).unwrap();
    assert_eq!(p.site.as_deref(), Some("NIKHEF-ELPROD"));
    assert_eq!(p.vos.as_ref().unwrap().len(), 3);
    assert_eq!(p.max_proxy_lifetime, Some(7 * 86_400));
    assert_eq!(p.clock_skew, 300);
    assert_eq!(p.inputs, InputPolicy::Require);
    assert_eq!(p.crl, CrlPolicy::RequireIfPublished);
    assert_eq!(p.replay.store, ReplayStore::Local);
    assert_eq!(p.replay.max_uses, 1);
    assert_eq!(p.audit.syslog_socket, Path::new("/dev/log"));
    assert_eq!(p.audit.secret_env, ["ACCESS_TOKEN", "BEARER_TOKEN"]);
    assert_eq!(p.ban_files, [root().join("examples/banned.txt")]);
    assert_eq!(p.bans.subjects.len(), 1);
    let bans = p.ban_list().unwrap();
    assert_eq!(bans.fqans.len(), 1, "the example ban file is all comments");
    // The example's verifier settings reach the verifier.
    let c = p.configure(Config::default());
    assert_eq!(c.clock_skew, 300);
    assert_eq!(c.inputs, InputPolicy::Require);
}

#[test]
fn the_built_in_policy_keeps_every_vector_decision() {
    let p = Policy::default();
    for v in index()["vectors"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap();
        let d = decide_with(name, &p);
        let got = code(p.evaluate(&d));
        // Step 6 never turns a deny into a permit, nor changes its reason;
        // a job that names its sites needs a policy that names this one.
        let want = match name {
            "permit-with-environment-and-sites" => "policy.site-not-targeted",
            _ => v["expected"].as_str().unwrap(),
        };
        assert_eq!(got, want, "{name}");
    }
}

/// The site-policy vectors of `test-vectors/policy-vectors.json` (issue
/// 16: `issuer = "end-entity"`): each gives its expected decision, and each
/// deny is one its bundle's vector would permit under the built-in policy.
#[test]
fn every_policy_vector_gives_its_expected_decision() {
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(vectors().join("policy-vectors.json")).unwrap(),
    )
    .unwrap();
    let all = doc["vectors"].as_array().unwrap();
    assert!(all.len() >= 5, "only {} policy vectors", all.len());
    for v in all {
        let (name, vector) = (v["name"].as_str().unwrap(), v["vector"].as_str().unwrap());
        let p = policy(v["policy"].as_str().unwrap());
        let d = decide_with(vector, &p);
        assert!(
            d.is_permit(),
            "{name}: {vector} gave {} ({})",
            d.code(),
            d.message
        );
        let got = p.evaluate(&d);
        let want = v["expected"].as_str().unwrap();
        assert_eq!(code(got.clone()), want, "{name}: {got:?}");
        assert!(name.starts_with(if want == "permit" { "permit-" } else { "deny-" }));
        // Exactly one thing wrong: without the issuer rule, admitted.
        let mut any = p.clone();
        any.issuer = IssuerRule::Any;
        assert_eq!(code(any.evaluate(&d)), "permit", "{name}");
    }
}

#[test]
fn the_issuer_rule_is_any_by_default_and_reads_end_entity() {
    assert_eq!(Policy::default().issuer, IssuerRule::Any);
    assert_eq!(policy("").issuer, IssuerRule::Any);
    assert_eq!(policy("issuer = \"any\"\n").issuer, IssuerRule::Any);
    assert_eq!(
        policy("issuer = \"end-entity\"\n").issuer,
        IssuerRule::EndEntity
    );
    // The decision carries what the rule needs.
    assert!(
        decide("permit-direct-from-user-certificate")
            .identity
            .unwrap()
            .issued_by_end_entity
    );
    for via_proxy in ["permit-via-user-proxy", "permit-via-two-proxies"] {
        assert!(!decide(via_proxy).identity.unwrap().issued_by_end_entity);
    }
    // Checked last (6f): a banned user sealing under a proxy is reported as
    // banned.
    let d = decide("permit-via-user-proxy");
    let subject = &d.identity.as_ref().unwrap().end_entity;
    let p = policy(&format!(
        "issuer = \"end-entity\"\n[ban]\nsubjects = [{subject:?}]\n"
    ));
    assert_eq!(code(p.evaluate(&d)), "policy.banned-subject");
    let m = policy("issuer = \"end-entity\"\n")
        .evaluate(&d)
        .unwrap_err()
        .message;
    assert!(
        m.contains("sealed under the proxy") && m.contains("--cert/--key"),
        "{m}"
    );
}

/// Every kind of policy error, with the line and column of the culprit.
#[test]
fn policy_errors_name_file_line_and_column() {
    let cases: &[(&str, &str)] = &[
        // unknown key, top level and in a table
        ("site = \"X\"\nsitee = \"Y\"\n", "2:1"),
        ("[ban]\nsubjects = []\nusers = []\n", "3:1"),
        ("[replay]\nstore = \"local\"\nmax_use = 2\n", "3:1"),
        // wrong type
        ("vos = \"atlas\"\n", "1:7"),
        ("[audit]\nsyslog = \"yes\"\n", "2:10"),
        // bad pattern, bad DN, bad digest
        ("fqans = [\"/atlas/*\", \"atlas\"]\n", "1:22"),
        ("[ban]\nfqans = [\"/atlas/Role=?\"]\n", "2:10"),
        ("[ban]\nsubjects = [\"CN=x\"]\n", "2:13"),
        // DNs that could never match (C1), inline as in ban files
        (
            "[ban]\nsubjects = [\"/DC=org/CN=a\", \"/DC=org/CN=alice/\"]\n",
            "2:29",
        ),
        ("[ban]\nsubjects = [\"/dc=org/dc=test/CN=alice\"]\n", "2:13"),
        ("[ban]\ncas = [\"/DC=org/CN=CA # old\"]\n", "2:8"),
        ("[ban]\ncas = [\"/DC=org/CN=CA \"]\n", "2:8"),
        ("[ban]\ncas = [\"/DC=org//CN=CA\"]\n", "2:8"),
        // patterns that would widen or name no VO (C4)
        ("fqans = [\"/*\"]\n", "1:10"),
        ("[ban]\nfqans = [\"/*/Role=pilot\"]\n", "2:10"),
        ("fqans = [\"/atlas/*/Role=null\"]\n", "1:10"),
        ("[ban]\ndigests = [\"abc\"]\n", "2:12"),
        // bad duration
        ("max_proxy_lifetime = \"7 days\"\n", "1:22"),
        ("clock_skew = -5\n", "1:14"),
        ("clock_skew = \"2d\"\n", "1:14"),
        ("max_manifest_lifetime = 0\n", "1:25"),
        // bad enum value, bad range, inconsistent table
        ("inputs = \"never\"\n", "1:10"),
        ("[algorithms]\nlegacy_ca_rsa_bits = 512\n", "2:22"),
        ("\n[replay]\nstore = \"redis\"\n", "2:1"),
        (
            "[replay]\nredis_url = \"http://x\"\nstore = \"redis\"\n",
            "2:13",
        ),
        ("[replay]\nmax_uses = 0\n", "2:12"),
        ("vos = [\"at las\"]\n", "1:8"),
        // an issuer rule that does not exist (issue 16)
        ("issuer = \"proxy\"\n", "1:10"),
        ("issuer = true\n", "1:10"),
        // not TOML at all
        ("site = \n", "1:8"),
    ];
    for (text, at) in cases {
        let e = policy_in(Path::new("/etc/jobseal"), text).unwrap_err();
        assert_eq!(e.reason, Reason::PolicyInvalid, "{text:?}");
        let prefix = format!("/etc/jobseal/policy.toml:{at}: ");
        assert!(
            e.message.starts_with(&prefix),
            "{text:?}: expected {prefix}…, got {}",
            e.message
        );
        assert!(!e.message.contains('\n'), "one line: {}", e.message);
    }
    // A missing policy file is invalid too (only the default path may be absent).
    let e = Policy::load(Path::new("/nonexistent/jobseal/policy.toml")).unwrap_err();
    assert_eq!(e.reason, Reason::PolicyInvalid);
}

#[test]
fn each_ban_kind_denies_with_its_code() {
    let d = decide("permit-voms-verified");
    let id = d.identity.as_ref().unwrap();
    let job = d.job.as_ref().unwrap();
    let cases = [
        (
            format!("[ban]\nsubjects = [{:?}]", id.end_entity),
            "policy.banned-subject",
        ),
        (format!("[ban]\ncas = [{:?}]", id.ca), "policy.banned-ca"),
        (
            "[ban]\nfqans = [\"/testvo/*/Role=production\"]".to_string(),
            "policy.banned-fqan",
        ),
        (
            format!(
                "[ban]\ndigests = [{:?}]",
                job.manifest_sha256.to_uppercase()
            ),
            "policy.banned-digest",
        ),
        (
            format!("[ban]\njob_ids = [{:?}]", job.job_id),
            "policy.banned-job",
        ),
        // Bans come first: a banned user is reported as such even when the
        // site and VO checks would deny too.
        (
            format!(
                "site = \"ELSEWHERE\"\nvos = [\"atlas\"]\n[ban]\nsubjects = [{:?}]",
                id.end_entity
            ),
            "policy.banned-subject",
        ),
        // Other values ban nothing.
        (
            "[ban]\nsubjects = [\"/DC=org/CN=Someone Else\"]\nfqans = [\"/atlas/*\"]".to_string(),
            "permit",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(code(policy(&text).evaluate(&d)), want, "{text}");
    }
    // An intermediate CA of the path is banned as well as the anchor.
    let d = decide("permit-intermediate-ca");
    let cas = &d.identity.as_ref().unwrap().cas;
    assert!(cas.len() >= 2, "{cas:?}");
    assert_ne!(cas[0], d.identity.as_ref().unwrap().ca);
    let text = format!("[ban]\ncas = [{:?}]", cas[0]);
    assert_eq!(code(policy(&text).evaluate(&d)), "policy.banned-ca");
}

#[test]
fn ban_files_deny_with_every_code() {
    let d = decide("permit-voms-verified");
    let id = d.identity.as_ref().unwrap();
    let job = d.job.as_ref().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let e = policy_in(tmp.path(), "[ban]\nfiles = [\"ban.d/users\"]").unwrap_err();
    assert_eq!(
        e.reason,
        Reason::PolicyInvalid,
        "a missing ban file fails closed"
    );
    std::fs::create_dir(tmp.path().join("ban.d")).unwrap();
    let file = tmp.path().join("ban.d/users");
    std::fs::write(&file, "# nothing yet\n").unwrap();
    let p = policy_in(tmp.path(), "[ban]\nfiles = [\"ban.d/users\"]").unwrap();
    assert_eq!(code(p.evaluate(&d)), "permit");
    for (line, want) in [
        (
            format!("subject {}", id.end_entity),
            "policy.banned-subject",
        ),
        (format!("ca {}", id.ca), "policy.banned-ca"),
        ("fqan /testvo".to_string(), "policy.banned-fqan"),
        (
            format!("digest {}", job.manifest_sha256),
            "policy.banned-digest",
        ),
        (format!("job {}", job.job_id), "policy.banned-job"),
    ] {
        std::fs::write(&file, format!("# security team, ticket 42\n\n{line}\n")).unwrap();
        assert_eq!(code(p.evaluate(&d)), want, "{line}");
    }
}

/// The figure: banning takes effect on the next verification after the ban
/// file changes, and a broken ban file denies everything until fixed.
#[test]
fn banning_takes_effect_on_the_next_verification_after_the_ban_file_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("banned.txt");
    std::fs::write(&file, "# no bans\n").unwrap();
    let p = policy_in(tmp.path(), "[ban]\nfiles = [\"banned.txt\"]").unwrap();
    let d = decide("permit-direct-from-user-certificate");
    let user = d.identity.as_ref().unwrap().end_entity.clone();

    // 1. Before the ban: admitted (and the file is now cached).
    assert_eq!(code(p.evaluate(&d)), "permit");
    assert_eq!(code(p.evaluate(&d)), "permit");
    // 2. The security team appends the user; the very next check denies.
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str(&format!("subject {user}\n"));
    std::fs::write(&file, &text).unwrap();
    let e = p.evaluate(&d).unwrap_err();
    assert_eq!(e.reason, Reason::PolicyBannedSubject);
    eprintln!("after the ban: {e}");
    // 3. Replaced by a new file (rename, as editors do) with the ban lifted.
    let new = tmp.path().join("banned.txt.new");
    std::fs::write(&new, "# lifted\n").unwrap();
    std::fs::rename(&new, &file).unwrap();
    assert_eq!(code(p.evaluate(&d)), "permit");
    // 4. A typo fails closed, naming the file and line:column.
    std::fs::write(&file, "# oops\nsubjekt /DC=org/CN=x\n").unwrap();
    let e = p.evaluate(&d).unwrap_err();
    assert_eq!(e.reason, Reason::PolicyInvalid);
    assert!(
        e.message.starts_with(&format!("{}:2:1: ", file.display())),
        "{}",
        e.message
    );
    // 5. Deleting the file fails closed as well.
    std::fs::remove_file(&file).unwrap();
    assert_eq!(code(p.evaluate(&d)), "policy.invalid");
    std::fs::write(&file, "").unwrap();
    assert_eq!(code(p.evaluate(&d)), "permit");
}

#[test]
fn unverified_voms_attributes_never_count() {
    // Each AC claims testvo but fails a check: its FQANs are dropped.
    for name in [
        "permit-voms-bad-signature",
        "permit-voms-not-yet-valid",
        "permit-voms-no-lsc",
    ] {
        let d = decide(name);
        let voms = &d.identity.as_ref().unwrap().voms;
        assert!(
            !voms.is_empty() && voms.iter().all(|v| !v.verified),
            "{name}"
        );
        for (text, want) in [
            (
                "fqans = [\"/testvo\", \"/testvo/*\"]",
                "policy.fqan-not-accepted",
            ),
            ("vos = [\"testvo\"]", "policy.vo-not-accepted"),
            ("[ban]\nfqans = [\"/testvo\", \"/testvo/*\"]", "permit"),
        ] {
            assert_eq!(code(policy(text).evaluate(&d)), want, "{name}: {text}");
        }
    }
    // The same policies on the verified AC.
    let d = decide("permit-voms-verified");
    for (text, want) in [
        ("fqans = [\"/testvo/*/Role=production\"]", "permit"),
        ("fqans = [\"/testvo\"]", "permit"),
        ("fqans = [\"/atlas/*\"]", "policy.fqan-not-accepted"),
        ("vos = [\"testvo\"]", "permit"),
        ("[ban]\nfqans = [\"/testvo/*\"]", "policy.banned-fqan"),
    ] {
        assert_eq!(code(policy(text).evaluate(&d)), want, "verified: {text}");
    }
}

#[test]
fn site_checks() {
    // The manifest targets NIKHEF-ELPROD and CERN-PROD.
    let d = decide("permit-with-environment-and-sites");
    assert_eq!(
        code(policy("site = \"NIKHEF-ELPROD\"").evaluate(&d)),
        "permit"
    );
    assert_eq!(code(policy("site = \"CERN-PROD\"").evaluate(&d)), "permit");
    assert_eq!(
        code(policy("site = \"nikhef-elprod\"").evaluate(&d)),
        "policy.site-not-targeted"
    );
    assert_eq!(code(policy("").evaluate(&d)), "policy.site-not-targeted");
    // A manifest without sites runs at any site.
    let d = decide("permit-direct-from-user-certificate");
    assert_eq!(code(policy("site = \"ANYWHERE\"").evaluate(&d)), "permit");
    assert_eq!(code(policy("").evaluate(&d)), "permit");
}

#[test]
fn vo_checks() {
    // Every vector's manifest names the VO testvo.
    let plain = decide("permit-direct-from-user-certificate");
    let voms = decide("permit-voms-verified");
    assert_eq!(plain.job.as_ref().unwrap().vo.as_deref(), Some("testvo"));
    // Without `vos`, no VO is needed.
    assert_eq!(code(policy("").evaluate(&plain)), "permit");
    // The manifest's VO alone proves nothing.
    assert_eq!(
        code(policy("vos = [\"testvo\"]").evaluate(&plain)),
        "policy.vo-not-accepted"
    );
    assert_eq!(code(policy("vos = [\"testvo\"]").evaluate(&voms)), "permit");
    assert_eq!(
        code(policy("vos = [\"atlas\", \"cms\"]").evaluate(&voms)),
        "policy.vo-not-accepted"
    );
}

#[test]
fn lifetime_checks() {
    // The manifest and the job-bound proxy are valid for 1d + 300 s.
    let d = decide("permit-direct-from-user-certificate");
    let job = d.job.as_ref().unwrap();
    assert_eq!(job.not_after.0 - job.not_before.0, 86_400 + 300);
    for (text, want) in [
        (
            "max_proxy_lifetime = \"2d\"\nmax_manifest_lifetime = \"2d\"",
            "permit",
        ),
        (
            "max_proxy_lifetime = \"1d\"\nmax_manifest_lifetime = \"2d\"",
            "policy.lifetime-exceeded",
        ),
        (
            "max_proxy_lifetime = \"2d\"\nmax_manifest_lifetime = \"1d\"",
            "policy.lifetime-exceeded",
        ),
        ("max_manifest_lifetime = 86700", "permit"),
        ("max_manifest_lifetime = 86699", "policy.lifetime-exceeded"),
        // A larger skew does not lengthen what is accepted.
        (
            "clock_skew = \"1h\"\nmax_manifest_lifetime = \"1d\"",
            "policy.lifetime-exceeded",
        ),
    ] {
        assert_eq!(code(policy(text).evaluate(&d)), want, "{text}");
    }
    // Under a user proxy valid for 7 days, the usable window is the leaf's.
    let d = decide("permit-via-user-proxy");
    assert_eq!(
        code(policy("max_proxy_lifetime = \"2d\"").evaluate(&d)),
        "permit"
    );
}

#[test]
fn inputs_if_present_tolerates_only_a_missing_input() {
    let weak = policy("inputs = \"if-present\"");
    assert_eq!(weak.inputs, InputPolicy::IfPresent);
    let d = decide_with("deny-payload-input-missing", &weak);
    assert!(d.is_permit(), "{}", d.message);
    assert_eq!(code(weak.evaluate(&d)), "permit");
    let d = decide_with("deny-payload-input-changed", &weak);
    assert_eq!(d.code(), "payload.input-mismatch");
    assert_eq!(code(weak.evaluate(&d)), "payload.input-mismatch");
    // The default still requires it.
    let d = decide_with("deny-payload-input-missing", &Policy::default());
    assert_eq!(d.code(), "payload.input-missing");
}

#[test]
fn policy_is_shareable_and_defaults_are_documented_values() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Policy>();
    let p = Policy::default();
    assert_eq!(p.max_proxy_lifetime, Some(31 * 86_400));
    assert_eq!(p.max_manifest_lifetime, Some(31 * 86_400));
    assert_eq!(p.clock_skew, jobseal_verify::DEFAULT_CLOCK_SKEW);
    assert_eq!(p.inputs, InputPolicy::Require);
    assert!(p.site.is_none() && p.vos.is_none() && p.fqans.is_none());
    assert_eq!(p.allowed_uses(5), 1);
    assert_eq!(policy("[replay]\nmax_uses = 3").allowed_uses(2), 2);
    let r = policy("[replay]\nstore = \"redis\"\nredis_url = \"rediss://u:p@h:6379/0\"").replay;
    assert_eq!(r.store, ReplayStore::Redis);
    assert!(!r.redis_accept_volatile);
    // Issue 13 §2: accepting a Redis that can forget is said in so many words.
    let r = policy(
        "[replay]\nstore = \"redis\"\nredis_url = \"redis://h\"\n[replay.redis]\naccept_volatile = true\n",
    )
    .replay;
    assert!(r.redis_accept_volatile);
    for bad in [
        "[replay]\nstore = \"redis\"\nredis_url = \"redis://h\"\n[replay.redis]\naccept_volatile = 1\n",
        "[replay]\nstore = \"redis\"\nredis_url = \"redis://h\"\n[replay.redis]\naccept = true\n",
        "[replay]\nstore = \"local\"\n[replay.redis]\naccept_volatile = true\n",
    ] {
        let e = policy_in(Path::new("/etc/jobseal"), bad).unwrap_err();
        assert_eq!(e.reason, Reason::PolicyInvalid, "{bad:?}");
    }
}

/// C1: a ban file entry with a trailing comment bans the user it names,
/// and entries that could never match make the ban list invalid.
#[test]
fn ban_file_dn_entries_are_strict_and_may_carry_comments() {
    let d = decide("permit-voms-verified");
    let id = d.identity.as_ref().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("banned.txt");
    std::fs::write(&file, "").unwrap();
    let p = policy_in(tmp.path(), "[ban]\nfiles = [\"banned.txt\"]").unwrap();
    for line in [
        format!("subject {}   # INC-42", id.end_entity),
        format!("subject {}\t# INC-42  ", id.end_entity),
        format!("  ca {} # compromised", id.ca),
    ] {
        std::fs::write(&file, format!("{line}\n")).unwrap();
        let e = p.evaluate(&d).unwrap_err();
        assert!(
            matches!(
                e.reason,
                Reason::PolicyBannedSubject | Reason::PolicyBannedCa
            ),
            "{line}: {e}"
        );
    }
    let lower = |dn: &str| {
        dn.replace("/DC=", "/dc=")
            .replace("/CN=", "/cn=")
            .replace("/O=", "/o=")
    };
    for line in [
        format!("subject {}/", id.end_entity),
        format!("subject {}", lower(&id.end_entity)),
        format!("ca {}/", id.ca),
        format!("ca {}", lower(&id.ca)),
    ] {
        std::fs::write(&file, format!("# ticket\n{line}\n")).unwrap();
        let e = p.evaluate(&d).unwrap_err();
        assert_eq!(e.reason, Reason::PolicyInvalid, "{line}: {e}");
        let at = format!("{}:2:", file.display());
        assert!(e.message.starts_with(&at), "{line}: {}", e.message);
    }
}

/// C4: `/Role=NULL` at the end of a pattern narrows it to the null role;
/// it is never dropped so as to widen the pattern.
#[test]
fn a_null_role_pattern_does_not_accept_other_roles() {
    // The verified AC carries /testvo and /testvo/analysis/Role=production.
    let d = decide("permit-voms-verified");
    for (text, want) in [
        (
            "fqans = [\"/testvo/*/Role=NULL\"]",
            "policy.fqan-not-accepted",
        ),
        (
            "fqans = [\"/testvo/*/Role=NULL/Capability=NULL\"]",
            "policy.fqan-not-accepted",
        ),
        ("fqans = [\"/testvo/*/Role=production\"]", "permit"),
        ("fqans = [\"/testvo/Role=NULL\"]", "permit"),
        ("fqans = [\"/testvo/Role=NULL/Capability=NULL\"]", "permit"),
        ("[ban]\nfqans = [\"/testvo/*/Role=NULL\"]", "permit"),
        (
            "[ban]\nfqans = [\"/testvo/Role=NULL\"]",
            "policy.banned-fqan",
        ),
    ] {
        assert_eq!(code(policy(text).evaluate(&d)), want, "{text}");
    }
}

/// M3: a policy or ban file that someone other than root or this user can
/// change is not trusted.
#[test]
fn writable_or_foreign_policy_and_ban_files_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let set = |p: &Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    let d = decide("permit-direct-from-user-certificate");
    let tmp = tempfile::tempdir().unwrap();
    let pol = tmp.path().join("policy.toml");
    let ban = tmp.path().join("banned.txt");
    std::fs::write(&pol, "[ban]\nfiles = [\"banned.txt\"]\n").unwrap();
    std::fs::write(&ban, "# none\n").unwrap();
    set(&pol, 0o644);
    set(&ban, 0o644);
    let p = Policy::load(&pol).unwrap();
    assert_eq!(code(p.evaluate(&d)), "permit");
    for mode in [0o664, 0o646, 0o666, 0o620] {
        set(&pol, mode);
        let e = Policy::load(&pol).unwrap_err();
        assert_eq!(e.reason, Reason::PolicyInvalid, "{mode:o}");
        assert!(e.message.contains("writable by"), "{}", e.message);
        set(&pol, 0o644);
        // A ban file that becomes writable denies every job until fixed.
        set(&ban, mode);
        let e = p.evaluate(&d).unwrap_err();
        assert_eq!(e.reason, Reason::PolicyInvalid, "{mode:o}");
        assert!(
            e.message
                .starts_with(&format!("{}: the ban file is writable", ban.display())),
            "{}",
            e.message
        );
        assert_eq!(
            code(Policy::load(&pol).map(|_| ())),
            "policy.invalid",
            "{mode:o}: a bad ban file is reported at load"
        );
        set(&ban, 0o644);
        assert_eq!(code(p.evaluate(&d)), "permit");
    }
    set(&pol, 0o400);
    assert!(Policy::load(&pol).is_ok());
    // Owned by another user (only root can arrange that here).
    if std::os::unix::fs::chown(&ban, Some(4242), None).is_ok() {
        let e = p.evaluate(&d).unwrap_err();
        assert_eq!(e.reason, Reason::PolicyInvalid);
        assert!(e.message.contains("uid 4242"), "{}", e.message);
        std::os::unix::fs::chown(&pol, Some(4242), None).unwrap();
        let e = Policy::load(&pol).unwrap_err();
        assert!(
            e.message.contains("the policy is owned by uid 4242"),
            "{}",
            e.message
        );
    } else {
        eprintln!("not root: the owner check is covered by the unit tests only");
    }
}

#[test]
fn syslog_is_required_unless_the_policy_says_otherwise() {
    let default = Policy::from_toml("", Path::new("p.toml")).unwrap();
    assert!(default.audit.syslog_required);
    let relaxed = Policy::from_toml(
        "[audit]\nsyslog = true\nsyslog_required = false\n",
        Path::new("p.toml"),
    )
    .unwrap();
    assert!(relaxed.audit.syslog && !relaxed.audit.syslog_required);
    let bad =
        Policy::from_toml("[audit]\nsyslog_required = \"no\"\n", Path::new("p.toml")).unwrap_err();
    assert!(bad.message.starts_with("p.toml:2:"), "{}", bad.message);
}

/// A DN with `/` or `+` in a value is escaped in the identity (§6.8); a
/// ban written either escaped or as grid tools print it (unescaped) bans
/// it, for users and for CAs: a ban that matched less would admit.
#[test]
fn bans_match_the_escaped_and_the_grid_form_of_a_dn() {
    let mut d = decide("permit-voms-verified");
    let id = d.identity.as_mut().unwrap();
    id.end_entity = "/DC=org/OU=PDP/CN=host\\/node.example.org/CN=C\\+\\+ dev".into();
    id.ca = "/DC=org/CN=CA\\/1".into();
    for (text, want) in [
        (
            r#"[ban]
subjects = ["/DC=org/OU=PDP/CN=host\\/node.example.org/CN=C\\+\\+ dev"]"#,
            "policy.banned-subject",
        ),
        (
            r#"[ban]
subjects = ["/DC=org/OU=PDP/CN=host/node.example.org/CN=C++ dev"]"#,
            "policy.banned-subject",
        ),
        (
            r#"[ban]
cas = ["/DC=org/CN=CA/1"]"#,
            "policy.banned-ca",
        ),
        (
            r#"[ban]
subjects = ["/DC=org/OU=PDP/CN=host/node.example.org"]"#,
            "permit",
        ),
    ] {
        assert_eq!(code(policy(text).evaluate(&d)), want, "{text}");
    }
}
