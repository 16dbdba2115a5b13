//! Vectors of steps 2d.7 (namespaces) and 2d.8 (revocation). Each sits on a
//! trusted CA of its own whose CA-directory files (`<hash>.r0`,
//! `<hash>.namespaces`, `<hash>.signing_policy`) say one thing, so that the
//! CAs of every other vector keep no such file.

use super::*;
use crate::crl::CrlTemplate;

/// What these vectors add to the fixture.
#[derive(Default)]
pub(super) struct Status {
    /// (name, description, bundle, expected), in order.
    pub vectors: Vec<(String, String, Vec<u8>, Expected)>,
    /// Trust anchors to install.
    pub cas: Vec<Vec<u8>>,
    /// Other files of the CA directory: (file name, contents).
    pub files: Vec<(String, Vec<u8>)>,
}

const O: &str = "O=jobseal test vectors";

fn file_name(ca_cert: &[u8], suffix: &str) -> Result<String, IssueError> {
    let hash = name::openssl_hash(&subject_of(ca_cert))
        .ok_or_else(|| IssueError::Internal("malformed CA name".into()))?;
    Ok(format!("{hash:08x}.{suffix}"))
}

fn slash(cert: &[u8]) -> String {
    name::to_slash_string(&subject_of(cert))
}

fn ca(seed_byte: u8, cn: &str) -> Result<Party, IssueError> {
    throwaway::ca(
        &seed(seed_byte),
        &format!("CN={cn},{O}"),
        T.minus(365 * DAY),
        T.plus(9 * 365 * DAY),
    )
}

fn user_of(ca: &Party, seed_byte: u8, cn: &str) -> Result<Party, IssueError> {
    throwaway::user(
        ca,
        &seed(seed_byte),
        &format!("CN={cn},{O}"),
        u64::from(seed_byte),
        T.minus(DAY),
        T.plus(30 * DAY),
    )
}

fn bundle_of(signer: &Party, above: &[&Party]) -> Result<Vec<u8>, IssueError> {
    let mut chain = vec![signer.cert.clone()];
    chain.extend(above.iter().map(|p| p.cert.clone()));
    Build::new(Issuer {
        key: &signer.key,
        chain,
    })
    .bundle()
}

impl Status {
    fn add(&mut self, name: &str, description: &str, bundle: Vec<u8>, expected: Expected) {
        self.vectors
            .push((name.into(), description.into(), bundle, expected));
    }
}

pub(super) fn generate() -> Result<Status, IssueError> {
    use Expected::{Deny, Permit};
    let mut st = Status::default();

    // A CA with a current CRL and a namespaces file, and a sub-CA it revoked.
    let ca_r = ca(40, "jobseal Test CA with CRL")?;
    let (sub_key, _, sub_spki) = throwaway::ed25519_from_seed(&seed(41))?;
    let sub_r = Party {
        cert: CertTemplate {
            serial: 41,
            issuer: subject_of(&ca_r.cert),
            subject: throwaway::name_der(&format!("CN=jobseal Test Sub CA revoked,{O}"))?,
            spki: sub_spki,
            not_before: T.minus(365 * DAY),
            not_after: T.plus(5 * 365 * DAY),
            extensions: throwaway::ca_extensions()?,
        }
        .sign(&ca_r.key)?,
        key: sub_key,
        pkcs8: zeroize_empty(),
    };
    let rosa = user_of(&ca_r, 42, "Rosa Current")?;
    let rita = user_of(&ca_r, 43, "Rita Revoked")?;
    let mallory = user_of(&ca_r, 44, "Mallory Denied")?;
    let sam = user_of(&sub_r, 45, "Sam Subordinate")?;
    st.files.push((
        file_name(&ca_r.cert, "r0")?,
        CrlTemplate::new(&ca_r.cert, T.minus(DAY), T.plus(7 * DAY))?
            .revoke(43, T.minus(2 * DAY))
            .revoke(41, T.minus(2 * DAY))
            .sign_pem(&ca_r.key)?,
    ));
    st.files.push((
        file_name(&ca_r.cert, "namespaces")?,
        format!(
            "##############################################################################\n\
             #NAMESPACES-VERSION: 1.0\n\
             #\n\
             # jobseal test vectors: a CA with a CRL and a sub-CA\n\
             #\n\
             TO Issuer SELF \\\n  DENY Subject \"/{O}/CN=Mallory.*\"\n\n\
             TO Issuer \"{}\" \\\n  PERMIT Subject \"/{O}/CN=.*\"\n\n\
             TO Issuer \"{}\" \\\n  PERMIT Subject \"/{O}/CN=.*\"\n",
            slash(&ca_r.cert),
            slash(&sub_r.cert),
        )
        .into_bytes(),
    ));
    st.cas.push(ca_r.cert.clone());
    st.add(
        "permit-ca-with-crl-and-namespaces",
        "the CA publishes a current CRL (not listing the user) and a namespaces file that permits the user",
        bundle_of(&rosa, &[])?,
        Permit,
    );
    st.add(
        "deny-chain-user-certificate-revoked",
        "the user certificate's serial is on its CA's current CRL",
        bundle_of(&rita, &[])?,
        Deny(Reason::ChainRevoked),
    );
    st.add(
        "deny-chain-intermediate-ca-revoked",
        "the intermediate CA that issued the user certificate is on the root's CRL",
        bundle_of(&sam, &[&sub_r])?,
        Deny(Reason::ChainRevoked),
    );
    st.add(
        "deny-chain-namespace-deny-rule",
        "a DENY rule of the CA's namespaces file matches the user's subject",
        bundle_of(&mallory, &[])?,
        Deny(Reason::ChainNamespaceViolation),
    );

    // The same sub-CA installed in the CA directory, the bundle carrying
    // the user certificate alone: the root's CRL still revokes it.
    st.cas.push(sub_r.cert.clone());
    st.add(
        "deny-chain-intermediate-ca-revoked-in-directory",
        "the intermediate CA is in the CA directory, not the bundle, and the root's CRL revokes it",
        bundle_of(&sam, &[])?,
        Deny(Reason::ChainRevoked),
    );

    path_vectors(&mut st)?;

    // A CA whose CRL expired an hour before.
    let ca_e = ca(46, "jobseal Test CA expired CRL")?;
    let eve = user_of(&ca_e, 47, "Eve Stale")?;
    st.files.push((
        file_name(&ca_e.cert, "r0")?,
        CrlTemplate::new(&ca_e.cert, T.minus(8 * DAY), T.minus(3600))?.sign_pem(&ca_e.key)?,
    ));
    st.cas.push(ca_e.cert.clone());
    st.add(
        "deny-chain-crl-expired",
        "the CA's CRL passed its nextUpdate an hour before",
        bundle_of(&eve, &[])?,
        Deny(Reason::ChainCrlExpired),
    );

    // A CA whose CRL does not verify.
    let ca_i = ca(48, "jobseal Test CA bad CRL")?;
    let ivan = user_of(&ca_i, 49, "Ivan Unchecked")?;
    let mut crl = CrlTemplate::new(&ca_i.cert, T.minus(DAY), T.plus(7 * DAY))?.sign(&ca_i.key)?;
    if let Some(last) = crl.last_mut() {
        *last ^= 0x01;
    }
    st.files.push((
        file_name(&ca_i.cert, "r0")?,
        encode_block("X509 CRL", &crl).into_bytes(),
    ));
    st.cas.push(ca_i.cert.clone());
    st.add(
        "deny-chain-crl-invalid",
        "one bit of the CA's CRL signature flipped",
        bundle_of(&ivan, &[])?,
        Deny(Reason::ChainCrlInvalid),
    );

    // A CA whose namespace does not include the user.
    let ca_n = ca(50, "jobseal Test CA namespaces")?;
    let nora = user_of(&ca_n, 51, "Nora Outside")?;
    st.files.push((
        file_name(&ca_n.cert, "namespaces")?,
        format!("TO Issuer SELF PERMIT Subject \"/{O}/OU=Physics/.*\"\n").into_bytes(),
    ));
    st.cas.push(ca_n.cert.clone());
    st.add(
        "deny-chain-namespace-violation",
        "the CA's namespaces file permits only OU=Physics subjects; the user has none",
        bundle_of(&nora, &[])?,
        Deny(Reason::ChainNamespaceViolation),
    );

    // A CA with a Globus signing policy (and no namespaces file).
    let ca_s = ca(52, "jobseal Test CA signing policy")?;
    let sid = user_of(&ca_s, 53, "Sid Signed")?;
    st.files.push((
        file_name(&ca_s.cert, "signing_policy")?,
        format!(
            "# EACL of a jobseal test CA\n \
             access_id_CA      X509         '{}'\n \
             pos_rights        globus        CA:sign\n \
             cond_subjects     globus       '\"/{O}/CN=*\"'\n",
            slash(&ca_s.cert)
        )
        .into_bytes(),
    ));
    st.cas.push(ca_s.cert.clone());
    st.add(
        "permit-ca-with-signing-policy",
        "the CA's signing_policy permits the user's subject",
        bundle_of(&sid, &[])?,
        Permit,
    );

    // A CA whose namespaces file uses a construct the verifier refuses.
    let ca_p = ca(54, "jobseal Test CA broken policy")?;
    let pat = user_of(&ca_p, 55, "Pat Policy")?;
    st.files.push((
        file_name(&ca_p.cert, "namespaces")?,
        format!("TO Issuer SELF PERMIT Subject \"/{O}/(CN|OU)=.*\"\n").into_bytes(),
    ));
    st.cas.push(ca_p.cert.clone());
    st.add(
        "deny-chain-policy-file-invalid",
        "the CA's namespaces file uses regular expression alternation, which is not supported",
        bundle_of(&pat, &[])?,
        Deny(Reason::ChainPolicyFileInvalid),
    );
    Ok(st)
}

/// A sub-CA of `root` (not self-issued), with `extensions`.
fn sub_ca(
    root: &Party,
    seed_byte: u8,
    cn: &str,
    extensions: Vec<x509_cert::ext::Extension>,
) -> Result<Party, IssueError> {
    let (key, _, spki) = throwaway::ed25519_from_seed(&seed(seed_byte))?;
    Ok(Party {
        cert: CertTemplate {
            serial: u64::from(seed_byte),
            issuer: subject_of(&root.cert),
            subject: throwaway::name_der(&format!("CN={cn},{O}"))?,
            spki,
            not_before: T.minus(365 * DAY),
            not_after: T.plus(5 * 365 * DAY),
            extensions,
        }
        .sign(&root.key)?,
        key,
        pkcs8: zeroize_empty(),
    })
}

/// A self-signed CA of the key of `seed_byte`, valid from `nb` to `na`.
fn root_issue(seed_byte: u8, cn: &str, nb: UnixTime, na: UnixTime) -> Result<Party, IssueError> {
    throwaway::ca(&seed(seed_byte), &format!("CN={cn},{O}"), nb, na)
}

fn pem_cert(cert: &[u8]) -> Vec<u8> {
    encode_block("CERTIFICATE", cert).into_bytes()
}

/// Step 2b/2c: paths built upward through the CA directory to a
/// self-signed root, and the choice among same-name anchors.
fn path_vectors(st: &mut Status) -> Result<(), IssueError> {
    use Expected::{Deny, Permit};

    // A root and its sub-CA, both in the directory; the bundle carries the
    // user certificate alone.
    let root = ca(60, "jobseal Test Root")?;
    let sub = sub_ca(
        &root,
        61,
        "jobseal Test Sub CA in directory",
        throwaway::ca_extensions()?,
    )?;
    let dora = user_of(&sub, 62, "Dora Directory")?;
    st.cas.push(root.cert.clone());
    st.cas.push(sub.cert.clone());
    st.add(
        "permit-intermediate-ca-in-directory",
        "the user certificate alone; its issuer, a sub-CA, and the sub-CA's root are in the CA directory",
        bundle_of(&dora, &[])?,
        Permit,
    );

    // A sub-CA in the directory whose root is not: no path to a root.
    let absent_root = ca(63, "jobseal Test Root not installed")?;
    let orphan = sub_ca(
        &absent_root,
        64,
        "jobseal Test Sub CA orphaned",
        throwaway::ca_extensions()?,
    )?;
    let otto = user_of(&orphan, 65, "Otto Orphan")?;
    st.cas.push(orphan.cert.clone());
    st.add(
        "deny-chain-root-not-in-directory",
        "the user's sub-CA is in the CA directory but its root is not: a path must end at a self-signed root",
        bundle_of(&otto, &[])?,
        Deny(Reason::ChainUntrusted),
    );

    // A root renewed with the same name and key: the expired issue at
    // <hash>.0 and the current one at <hash>.1, and a second root the
    // other way round; also the expired issue carried in the bundle.
    for (seed_byte, cn, expired_first) in [
        (66, "jobseal Test Root renewed A", true),
        (68, "jobseal Test Root renewed B", false),
    ] {
        let old = root_issue(seed_byte, cn, T.minus(10 * 365 * DAY), T.minus(DAY))?;
        let new = root_issue(seed_byte, cn, T.minus(30 * DAY), T.plus(9 * 365 * DAY))?;
        let (first, second) = if expired_first {
            (&old, &new)
        } else {
            (&new, &old)
        };
        st.files
            .push((file_name(&new.cert, "0")?, pem_cert(&first.cert)));
        st.files
            .push((file_name(&new.cert, "1")?, pem_cert(&second.cert)));
        let user = user_of(
            &new,
            seed_byte + 1,
            &format!("Rene {}", if expired_first { "A" } else { "B" }),
        )?;
        let order = if expired_first {
            "<hash>.0 expired, <hash>.1 current"
        } else {
            "<hash>.0 current, <hash>.1 expired"
        };
        st.add(
            &format!(
                "permit-renewed-root-{}",
                if expired_first {
                    "after-expired-copy"
                } else {
                    "before-expired-copy"
                }
            ),
            &format!(
                "two issues of the root, same name and key ({order}): the current one is the anchor"
            ),
            bundle_of(&user, &[])?,
            Permit,
        );
        if expired_first {
            // An older issue still, in no CA directory.
            let stale = root_issue(
                seed_byte,
                cn,
                T.minus(20 * 365 * DAY),
                T.minus(10 * 365 * DAY),
            )?;
            st.add(
                "permit-expired-root-copy-in-bundle",
                "the bundle ends with an expired issue of its root (same name and key, not in the CA directory); the directory's current issue is the anchor",
                bundle_of(&user, &[&stale])?,
                Permit,
            );
        }
    }

    // A root carrying a (critical) JobBinding extension.
    let (key, _, spki) = throwaway::ed25519_from_seed(&seed(70))?;
    let bound_name = throwaway::name_der(&format!("CN=jobseal Test Root with JobBinding,{O}"))?;
    let mut exts = throwaway::ca_extensions()?;
    exts.push(extension(oid::JOB_BINDING, true, &[0x30, 0x00])?);
    let bound_root = Party {
        cert: CertTemplate {
            serial: 70,
            issuer: bound_name.clone(),
            subject: bound_name,
            spki,
            not_before: T.minus(365 * DAY),
            not_after: T.plus(9 * 365 * DAY),
            extensions: exts,
        }
        .sign(&key)?,
        key,
        pkcs8: zeroize_empty(),
    };
    let bea = user_of(&bound_root, 71, "Bea Bound")?;
    st.cas.push(bound_root.cert.clone());
    st.add(
        "deny-binding-on-trust-anchor",
        "the trust anchor carries a JobBinding extension",
        bundle_of(&bea, &[])?,
        Deny(Reason::BindingMisplaced),
    );

    name_vectors(st)?;

    // An expired CRL left beside the current one.
    let ca_c = ca(72, "jobseal Test CA old CRL beside")?;
    let cleo = user_of(&ca_c, 73, "Cleo Current")?;
    st.files.push((
        file_name(&ca_c.cert, "r0")?,
        CrlTemplate::new(&ca_c.cert, T.minus(16 * DAY), T.minus(8 * DAY))?.sign_pem(&ca_c.key)?,
    ));
    st.files.push((
        file_name(&ca_c.cert, "r1")?,
        CrlTemplate::new(&ca_c.cert, T.minus(DAY), T.plus(7 * DAY))?.sign_pem(&ca_c.key)?,
    ));
    st.cas.push(ca_c.cert.clone());
    st.add(
        "permit-expired-crl-beside-current-crl",
        "the CA's <hash>.r0 expired a week ago; <hash>.r1, its successor, is current",
        bundle_of(&cleo, &[])?,
        Permit,
    );
    Ok(())
}

/// A user certificate of `ca` with the given raw subject and issuer names
/// and keyUsage value.
fn user_raw(
    ca: &Party,
    seed_byte: u8,
    subject: Vec<u8>,
    issuer: Vec<u8>,
    key_usage: &[u8],
) -> Result<Party, IssueError> {
    let (key, pkcs8, spki) = throwaway::ed25519_from_seed(&seed(seed_byte))?;
    let cert = CertTemplate {
        serial: u64::from(seed_byte),
        issuer,
        subject,
        spki,
        not_before: T.minus(DAY),
        not_after: T.plus(30 * DAY),
        extensions: vec![extension(oid::KEY_USAGE, true, key_usage)?],
    }
    .sign(&ca.key)?;
    Ok(Party { key, pkcs8, cert })
}

/// `SEQUENCE { SET { SEQUENCE { O, "jobseal test vectors" } } SET { SEQUENCE { CN, value } } }`.
fn name_with_cn(value_tlv: &[u8]) -> Vec<u8> {
    let wrap = |tag: u8, body: &[u8]| {
        let mut out = tlv::header(tag, body.len());
        out.extend_from_slice(body);
        out
    };
    let atv = |oid: &[u8], value: &[u8]| wrap(0x30, &[wrap(0x06, oid), value.to_vec()].concat());
    let o = wrap(
        0x31,
        &atv(&[0x55, 0x04, 0x0a], &wrap(0x0c, b"jobseal test vectors")),
    );
    let cn = wrap(0x31, &atv(&[0x55, 0x04, 0x03], value_tlv));
    wrap(0x30, &[o, cn].concat())
}

/// §5 and §6.8: names compared by their canonical form, names that cannot
/// be read, and the keyUsage encoding (2d.5).
fn name_vectors(st: &mut Status) -> Result<(), IssueError> {
    use Expected::{Deny, Permit};
    let ku = &jobseal_issue::proxy::KU_SIGNATURE_AND_ENCIPHERMENT;
    let ca_x = ca(74, "jobseal Test CA names")?;
    st.cas.push(ca_x.cert.clone());
    // The user certificate names its issuer in other case and spacing.
    let loose_issuer = throwaway::name_der(&format!("CN=JOBSEAL test   ca  NAMES,{O}"))?;
    let ines = user_raw(
        &ca_x,
        75,
        throwaway::name_der(&format!("CN=Ines Issuer,{O}"))?,
        loose_issuer,
        ku,
    )?;
    st.add(
        "permit-issuer-name-differs-in-case-and-spacing",
        "the user certificate's issuer name differs from its CA's subject in ASCII case and inner spacing only: equal names (§5)",
        bundle_of(&ines, &[])?,
        Permit,
    );
    // A CN that is a UTF8String of bytes that are not UTF-8.
    let ursula = user_raw(
        &ca_x,
        76,
        name_with_cn(&[0x0c, 0x03, b'U', 0xff, b'x']),
        subject_of(&ca_x.cert),
        ku,
    )?;
    st.add(
        "deny-cert-user-subject-invalid-utf8",
        "the user's CN is a UTF8String whose bytes are not UTF-8: the name cannot be an identity",
        bundle_of(&ursula, &[])?,
        Deny(Reason::CertMalformed),
    );
    // A CN that is a BIT STRING: rendered as # and hex, permitted.
    let bits = user_raw(
        &ca_x,
        77,
        name_with_cn(&[0x03, 0x02, 0x00, 0x42]),
        subject_of(&ca_x.cert),
        ku,
    )?;
    st.add(
        "permit-user-subject-cn-not-a-string",
        "the user's CN is a BIT STRING: a name all the same, written /O=jobseal test vectors/CN=#03020042",
        bundle_of(&bits, &[])?,
        Permit,
    );
    // Signed with an algorithm outside the table whose parameters are
    // malformed too (RSASSA-PSS with NULL): refused as the algorithm.
    let pia = user_of(&ca_x, 79, "Pia Pss")?;
    let pss_null = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, 0x05, 0x00,
    ];
    let pia = Party {
        cert: with_signature_algorithm(&pia.cert, &pss_null)
            .ok_or_else(|| IssueError::Internal("cannot re-encode the certificate".into()))?,
        ..pia
    };
    st.add(
        "deny-chain-rsassa-pss-with-malformed-parameters",
        "the user certificate claims RSASSA-PSS with NULL parameters: an algorithm outside the table is chain.weak-algorithm whatever its parameters",
        bundle_of(&pia, &[])?,
        Deny(Reason::ChainWeakAlgorithm),
    );
    // A `/` inside the user's CN: a namespace DENY rule written unescaped
    // (as grid tools print the name) still denies; a PERMIT rule written
    // that way grants nothing (§5.2, §6.8).
    for (seed_byte, cn, host, rules, name, description) in [
        (
            80,
            "jobseal Test CA deny rule",
            "host/bad.example.org",
            "TO Issuer SELF DENY Subject \"/O=jobseal test vectors/CN=host/bad.*\"\n\
             TO Issuer SELF PERMIT Subject \"/O=jobseal test vectors/.*\"\n",
            "deny-chain-namespace-deny-rule-unescaped-slash",
            "the user's CN is host/bad.example.org; a DENY rule names it as grid tools print it (unescaped /): it denies",
        ),
        (
            82,
            "jobseal Test CA permit rule",
            "host/good.example.org",
            "TO Issuer SELF PERMIT Subject \"/O=jobseal test vectors/CN=host/good.example.org\"\n",
            "deny-chain-namespace-permit-rule-unescaped-slash",
            "the user's CN is host/good.example.org; the only PERMIT rule names it unescaped, which is not its / form (host\\/good…): nothing permits it",
        ),
    ] {
        let ca_ns = ca(seed_byte, cn)?;
        let user = user_raw(
            &ca_ns,
            seed_byte + 1,
            throwaway::name_der(&format!("CN={host},{O}"))?,
            subject_of(&ca_ns.cert),
            ku,
        )?;
        st.files.push((
            file_name(&ca_ns.cert, "namespaces")?,
            rules.as_bytes().to_vec(),
        ));
        st.cas.push(ca_ns.cert.clone());
        st.add(
            name,
            description,
            bundle_of(&user, &[])?,
            Deny(Reason::ChainNamespaceViolation),
        );
    }
    // A user certificate named as its CA, in other case: refused whatever
    // the namespace setting (issue 13 §5).
    let mimic = user_raw(
        &ca_x,
        84,
        throwaway::name_der(&format!("CN=JOBSEAL TEST CA NAMES,{O}"))?,
        subject_of(&ca_x.cert),
        ku,
    )?;
    st.add(
        "deny-chain-user-named-as-its-ca",
        "the user certificate's subject is its CA's name in capitals: a user never carries its CA's name",
        bundle_of(&mimic, &[])?,
        Deny(Reason::ChainNamespaceViolation),
    );
    // keyUsage with a trailing zero byte: not DER (issue 13 §6).
    let ken = user_raw(
        &ca_x,
        85,
        throwaway::name_der(&format!("CN=Ken Keyusage,{O}"))?,
        subject_of(&ca_x.cert),
        &[0x03, 0x03, 0x07, 0x80, 0x00],
    )?;
    st.add(
        "deny-cert-key-usage-not-der",
        "the user certificate's keyUsage BIT STRING ends in a zero byte (03 03 07 80 00): not DER",
        bundle_of(&ken, &[])?,
        Deny(Reason::CertMalformed),
    );
    // keyUsage with seven unused bits, all set (keyCertSign among them).
    let kim = user_raw(
        &ca_x,
        78,
        throwaway::name_der(&format!("CN=Kim Keyusage,{O}"))?,
        subject_of(&ca_x.cert),
        &[0x03, 0x02, 0x07, 0xff],
    )?;
    st.add(
        "deny-cert-key-usage-unused-bits-set",
        "the user certificate's keyUsage BIT STRING has 7 unused bits, all set",
        bundle_of(&kim, &[])?,
        Deny(Reason::CertMalformed),
    );
    Ok(())
}

/// `cert` with both signature algorithm fields replaced by `alg` (the
/// signature value is kept: a verifier refuses the algorithm first).
fn with_signature_algorithm(cert: &[u8], alg: &[u8]) -> Option<Vec<u8>> {
    let wrap = |tag: u8, parts: &[&[u8]]| {
        let body = parts.concat();
        let mut out = tlv::header(tag, body.len());
        out.extend_from_slice(&body);
        out
    };
    let outer = tlv::read_all(cert)?;
    let [tbs, _, signature] = <[tlv::Tlv<'_>; 3]>::try_from(tlv::children(outer.value)?).ok()?;
    let fields = tlv::children(tbs.value)?;
    // version [0], serialNumber, signature, issuer, …
    let mut parts: Vec<&[u8]> = fields.iter().map(|f| f.raw).collect();
    *parts.get_mut(2)? = alg;
    let tbs = wrap(0x30, &parts);
    Some(wrap(0x30, &[&tbs, alg, signature.raw]))
}
