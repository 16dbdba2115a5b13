//! VOMS vectors (§6.3a): permits whose intermediate proxy carries a VOMS AC
//! signed by a test AA. One AC is trusted; every other has exactly one thing
//! wrong, so its attributes are dropped for exactly the reason it names,
//! while the job is still permitted.

use super::*;
use crate::ac::{AcSpec, OID_TARGETING, ac_ext, ac_seq, oid_der, t};

/// What a vector's VOMS attributes must be (`expected_voms` of
/// `vectors.json`), one entry per AC in chain order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedVoms {
    pub vo: String,
    /// Verified FQANs (empty when not verified).
    pub fqans: Vec<String>,
    /// Verified generic attributes: (name, value, qualifier).
    pub generic_attributes: Vec<(String, String, String)>,
    pub verified: bool,
    /// The `voms.*` code when not verified.
    pub error: Option<&'static str>,
}

impl ExpectedVoms {
    fn verified(vo: &str, fqans: &[&str], ga: &[(&str, &str, &str)]) -> Self {
        Self {
            vo: vo.into(),
            fqans: fqans.iter().map(|f| f.to_string()).collect(),
            generic_attributes: ga
                .iter()
                .map(|(n, v, q)| (n.to_string(), v.to_string(), q.to_string()))
                .collect(),
            verified: true,
            error: None,
        }
    }

    fn untrusted(vo: &str, code: &'static str) -> Self {
        Self {
            vo: vo.into(),
            fqans: Vec::new(),
            generic_attributes: Vec::new(),
            verified: false,
            error: Some(code),
        }
    }

    /// The JSON form of `vectors.json`.
    pub fn to_json(&self) -> serde_json::Value {
        if self.verified {
            json!({
                "vo": self.vo,
                "fqans": self.fqans,
                "generic_attributes": self.generic_attributes.iter().map(|(n, v, q)| json!({
                    "name": n, "value": v, "qualifier": q,
                })).collect::<Vec<_>>(),
                "verified": true,
            })
        } else {
            json!({ "vo": self.vo, "verified": false, "error": self.error })
        }
    }
}

/// What these vectors add to the fixture.
pub(super) struct Voms {
    /// (name, description, bundle, expected VOMS outcome), in order; every
    /// one is a permit.
    pub vectors: Vec<(String, String, Vec<u8>, Vec<ExpectedVoms>)>,
    /// Files of the vomsdir: (path relative to it, contents).
    pub lsc: Vec<(String, String)>,
    /// (name, description, bundle, reason): the bundles the one VOMS rule
    /// that denies refuses (§6.3a, `chain.voms-two-sources`).
    pub denies: Vec<(String, String, Vec<u8>, Reason)>,
}

const O: &str = "O=jobseal test vectors";
const VO: &str = "testvo";
const AA_HOST: &str = "voms.jobseal.test";
const AA2_HOST: &str = "voms2.jobseal.test";

/// An AA: an end-entity certificate of `ca` with a fixed key identifier.
fn aa(ca: &Party, seed_byte: u8, cn: &str) -> Result<Party, IssueError> {
    crate::ac::aa(
        ca,
        &seed(seed_byte),
        u64::from(seed_byte),
        &format!("CN={cn},{O}"),
        (T.minus(365 * DAY), T.plus(365 * DAY)),
    )
}

fn slash(name_der: &[u8]) -> String {
    name::to_slash_string(name_der)
}

/// A permit bundle whose proxy (of the user) carries these ACs.
fn bundle_with(pki: &Pki, acs: &[Vec<u8>]) -> Result<Vec<u8>, IssueError> {
    let value = ac_seq(acs);
    let proxy = proxy_of(
        &pki.user.cert,
        &pki.user.key,
        90,
        &ProxyKind::InheritAll { path_len: None },
        |tpl| {
            tpl.extensions
                .push(extension(oid::VOMS_AC_SEQ, false, &value)?);
            Ok(())
        },
    )?;
    Build::new(Issuer {
        key: &proxy.key,
        chain: vec![proxy.cert.clone(), pki.user.cert.clone()],
    })
    .bundle()
}

/// Generate the VOMS vectors; `sub_ca` is a trusted intermediate CA (issued
/// by the vectors' root CA, carried in bundles, not in the CA directory).
pub(super) fn generate(pki: &Pki, sub_ca: &Party) -> Result<Voms, IssueError> {
    let mut out = Voms {
        vectors: Vec::new(),
        lsc: Vec::new(),
        denies: Vec::new(),
    };
    let root_dn = slash(&subject_of(&pki.ca.cert));
    let aa1 = aa(&pki.ca, 91, AA_HOST)?;
    let aa2 = aa(sub_ca, 95, AA2_HOST)?;
    out.lsc.push((
        format!("{VO}/{AA_HOST}.lsc"),
        format!(
            "# The test AA of VO {VO}: its DN, then its CA's.\n{}\n{root_dn}\n",
            slash(&subject_of(&aa1.cert))
        ),
    ));
    out.lsc.push((
        format!("{VO}/{AA2_HOST}.lsc"),
        format!(
            "{}\n{}\n{root_dn}\n",
            slash(&subject_of(&aa2.cert)),
            slash(&subject_of(&sub_ca.cert))
        ),
    ));
    let good = AcSpec {
        vo: VO.into(),
        host: AA_HOST.into(),
        fqans: vec![format!("/{VO}"), format!("/{VO}/analysis/Role=production")],
        generic: vec![("nickname".into(), "alice".into(), VO.into())],
        holder_name: subject_of(&pki.user.cert),
        holder_serial: vec![0x02],
        issuer: subject_of(&aa1.cert),
        carried: vec![aa1.cert.clone()],
        not_before: T.minus(3600),
        not_after: T.plus(DAY),
        extra_extensions: Vec::new(),
        algorithm: None,
        flip_signature: false,
    };
    let fqans = [
        "/testvo".to_string(),
        "/testvo/analysis/Role=production".to_string(),
    ];
    let fqans: Vec<&str> = fqans.iter().map(String::as_str).collect();
    let trusted = vec![ExpectedVoms::verified(
        VO,
        &fqans,
        &[("nickname", "alice", VO)],
    )];
    let mut add = |name: &str,
                   description: &str,
                   acs: Vec<Vec<u8>>,
                   expected: Vec<ExpectedVoms>|
     -> Result<(), IssueError> {
        out.vectors.push((
            name.into(),
            description.into(),
            bundle_with(pki, &acs)?,
            expected,
        ));
        Ok(())
    };
    let untrusted = |code: &'static str| vec![ExpectedVoms::untrusted(VO, code)];

    // ---- Trusted ----
    add(
        "permit-voms-verified",
        "the user proxy carries an AC of VO testvo signed by the AA its LSC describes: two FQANs and a generic attribute, verified",
        vec![good.sign(&aa1.key)?],
        trusted.clone(),
    )?;
    {
        let mut s = good.clone();
        s.holder_name = subject_of(&pki.ca.cert);
        add(
            "permit-voms-holder-names-eec-issuer",
            "the AC holder names the EEC by its issuer and serial (RFC 5755) rather than its subject (VOMS practice): verified",
            vec![s.sign(&aa1.key)?],
            trusted.clone(),
        )?;
    }
    {
        let mut s = good.clone();
        s.host = AA2_HOST.into();
        s.issuer = subject_of(&aa2.cert);
        s.carried = vec![aa2.cert.clone(), sub_ca.cert.clone()];
        add(
            "permit-voms-aa-under-intermediate-ca",
            "the AA is issued by an intermediate CA carried in the AC; its LSC lists the AA, the intermediate and the root: verified",
            vec![s.sign(&aa2.key)?],
            trusted.clone(),
        )?;
    }
    {
        let mut s = good.clone();
        s.not_before = T.plus(200);
        add(
            "permit-voms-not-before-within-skew",
            "the AC starts 200 s in the future, within the 300 s skew: verified",
            vec![s.sign(&aa1.key)?],
            trusted.clone(),
        )?;
    }

    // ---- Untrusted, in the order of the checks ----
    add(
        "permit-voms-limits-exceeded",
        "nine ACs in one extension, more than the eight examined: none trusted",
        vec![good.sign(&aa1.key)?; 9],
        vec![ExpectedVoms::untrusted("", "voms.limits-exceeded")],
    )?;
    {
        let mut s = good.clone();
        s.fqans.push("/othervo/Role=production".into());
        add(
            "permit-voms-malformed",
            "an FQAN outside the AC's VO: the AC breaks the VOMS profile",
            vec![s.sign(&aa1.key)?],
            untrusted("voms.malformed"),
        )?;
    }
    {
        let mut s = good.clone();
        s.extra_extensions
            .push(ac_ext("1.3.6.1.4.1.32473.7325.9.9", true, &[0x05, 0x00])?);
        add(
            "permit-voms-unhandled-critical-extension",
            "the AC carries an unknown critical extension",
            vec![s.sign(&aa1.key)?],
            untrusted("voms.unhandled-critical-extension"),
        )?;
    }
    {
        let mut s = good.clone();
        let target = t(
            0x30,
            &[&t(0x30, &[&t(0xa0, &[&t(0x86, &[b"https://ce.example"])])])],
        );
        s.extra_extensions
            .push(ac_ext(OID_TARGETING, true, &target)?);
        add(
            "permit-voms-targeted",
            "the AC is targeted at a named service, which the verifier cannot evaluate",
            vec![s.sign(&aa1.key)?],
            untrusted("voms.targeted"),
        )?;
    }
    {
        let mut s = good.clone();
        s.vo = "othervo".into();
        s.fqans = vec!["/othervo".into()];
        add(
            "permit-voms-no-lsc",
            "an AC of VO othervo, for which the vomsdir has no LSC file",
            vec![s.sign(&aa1.key)?],
            vec![ExpectedVoms::untrusted("othervo", "voms.no-lsc")],
        )?;
    }
    {
        let impostor = aa(&pki.ca, 92, "voms-impostor.jobseal.test")?;
        let mut s = good.clone();
        s.issuer = subject_of(&impostor.cert);
        s.carried = vec![impostor.cert.clone()];
        add(
            "permit-voms-lsc-mismatch",
            "the AC of voms.jobseal.test is signed by another AA of the trusted CA, which the LSC does not describe",
            vec![s.sign(&impostor.key)?],
            untrusted("voms.lsc-mismatch"),
        )?;
    }
    {
        // Same names as the real AA and CA, so the LSC matches; only the
        // signatures tell them apart.
        let twin = throwaway::ca(&seed(93), CA, T.minus(365 * DAY), T.plus(9 * 365 * DAY))?;
        let twin_aa = aa(&twin, 94, AA_HOST)?;
        let mut s = good.clone();
        s.carried = vec![twin_aa.cert.clone()];
        add(
            "permit-voms-untrusted-aa",
            "the AA certificate has the real AA's and CA's names but is issued by another key: it has no path to a trusted CA",
            vec![s.sign(&twin_aa.key)?],
            untrusted("voms.untrusted-aa"),
        )?;
    }
    {
        let mut s = good.clone();
        s.issuer = throwaway::name_der(&format!("CN=voms-other.jobseal.test,{O}"))?;
        add(
            "permit-voms-issuer-mismatch",
            "the AC names another issuer than the AA certificate it carries",
            vec![s.sign(&aa1.key)?],
            untrusted("voms.issuer-mismatch"),
        )?;
    }
    {
        let mut s = good.clone();
        // ecdsa-with-SHA256 claimed, Ed25519 key: a pair of no accepted kind.
        s.algorithm = Some(t(0x30, &[&oid_der("1.2.840.10045.4.3.2")?]));
        add(
            "permit-voms-weak-algorithm",
            "the AC claims ecdsa-with-SHA256 while its AA key is Ed25519",
            vec![s.sign(&aa1.key)?],
            untrusted("voms.weak-algorithm"),
        )?;
    }
    {
        let mut s = good.clone();
        s.flip_signature = true;
        add(
            "permit-voms-bad-signature",
            "one bit of the AC signature flipped",
            vec![s.sign(&aa1.key)?],
            untrusted("voms.bad-signature"),
        )?;
    }
    {
        let mut s = good.clone();
        s.holder_serial = vec![0x03];
        add(
            "permit-voms-holder-mismatch",
            "the AC was issued to serial number 3 of the user's name, not to the user's certificate (serial 2)",
            vec![s.sign(&aa1.key)?],
            untrusted("voms.holder-mismatch"),
        )?;
    }
    {
        let mut s = good.clone();
        s.not_before = T.minus(10 * DAY);
        s.not_after = T.minus(DAY);
        add(
            "permit-voms-expired",
            "the AC expired a day before the verification time",
            vec![s.sign(&aa1.key)?],
            untrusted("voms.expired"),
        )?;
    }
    {
        let mut s = good.clone();
        s.not_before = T.plus(3600);
        add(
            "permit-voms-not-yet-valid",
            "the AC starts an hour after the verification time",
            vec![s.sign(&aa1.key)?],
            untrusted("voms.not-yet-valid"),
        )?;
    }
    in_job_bound_proxy(pki, &good, &aa1, &trusted, &mut out)?;
    Ok(out)
}

/// A bundle whose job-bound proxy, issued by `issuer`, carries these ACs.
fn leaf_bundle_with(issuer: Issuer<'_>, acs: &[Vec<u8>]) -> Result<Vec<u8>, IssueError> {
    let value = ac_seq(acs);
    let mut b = Build::new(issuer);
    b.edit_leaf = Box::new(move |tpl| {
        tpl.extensions
            .push(extension(oid::VOMS_AC_SEQ, false, &value)?);
        Ok(())
    });
    b.bundle()
}

/// Issue 16: the AC in the job-bound proxy that the user's certificate
/// issues (what `jobseal sign --voms` makes), checked as in a VOMS proxy;
/// and an AC in both a VOMS proxy and the job-bound proxy, denied.
fn in_job_bound_proxy(
    pki: &Pki,
    good: &AcSpec,
    aa1: &Party,
    trusted: &[ExpectedVoms],
    out: &mut Voms,
) -> Result<(), IssueError> {
    let user = || Issuer {
        key: &pki.user.key,
        chain: vec![pki.user.cert.clone()],
    };
    let mut add = |name: &str, description: &str, ac: &AcSpec, expected: Vec<ExpectedVoms>| {
        let bundle = leaf_bundle_with(user(), &[ac.sign(&aa1.key)?])?;
        out.vectors
            .push((name.into(), description.into(), bundle, expected));
        Ok::<(), IssueError>(())
    };
    add(
        "permit-voms-in-job-bound-proxy",
        "no proxy: the job-bound proxy, issued by the user certificate, carries the AC (holder the user's subject and serial): verified",
        good,
        trusted.to_vec(),
    )?;
    let mut s = good.clone();
    s.holder_name = subject_of(&pki.ca.cert);
    add(
        "permit-voms-in-job-bound-proxy-holder-names-eec-issuer",
        "the AC in the job-bound proxy names the user certificate by its issuer and serial, as the Debian VOMS server writes it: verified",
        &s,
        trusted.to_vec(),
    )?;
    let mut s = good.clone();
    s.holder_serial = vec![0x03];
    add(
        "permit-voms-in-job-bound-proxy-holder-mismatch",
        "the AC in the job-bound proxy was issued to serial number 3 of the user's name, not to the user certificate (serial 2): untrusted, as in a VOMS proxy, and the job still permitted without attributes",
        &s,
        vec![ExpectedVoms::untrusted(VO, "voms.holder-mismatch")],
    )?;
    // A VOMS proxy (the AC of permit-voms-verified) issues a job-bound
    // proxy that carries the same valid AC: the one thing wrong is the
    // second source. Its control, made by the same code without the leaf's
    // AC, is permitted with the VOMS proxy's attributes: the deny comes
    // from 2f alone.
    let ac = good.sign(&aa1.key)?;
    let value = ac_seq(std::slice::from_ref(&ac));
    let voms_proxy = proxy_of(
        &pki.user.cert,
        &pki.user.key,
        90,
        &ProxyKind::InheritAll { path_len: None },
        |tpl| {
            tpl.extensions
                .push(extension(oid::VOMS_AC_SEQ, false, &value)?);
            Ok(())
        },
    )?;
    let under_voms_proxy = |leaf_acs: &[Vec<u8>]| {
        let issuer = Issuer {
            key: &voms_proxy.key,
            chain: vec![voms_proxy.cert.clone(), pki.user.cert.clone()],
        };
        if leaf_acs.is_empty() {
            Build::new(issuer).bundle()
        } else {
            leaf_bundle_with(issuer, leaf_acs)
        }
    };
    let bundle = under_voms_proxy(&[ac])?;
    out.vectors.push((
        "permit-voms-one-source".into(),
        "the control of deny-chain-voms-two-sources, made by the same code: the same VOMS proxy issues the same job-bound proxy without an AC of its own: one source, verified".into(),
        under_voms_proxy(&[])?,
        trusted.to_vec(),
    ));
    out.denies.push((
        "deny-chain-voms-two-sources".into(),
        "the VOMS proxy of permit-voms-verified issues a job-bound proxy that carries a valid AC too: two sources of attributes".into(),
        bundle,
        Reason::ChainVomsTwoSources,
    ));
    Ok(())
}
