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
