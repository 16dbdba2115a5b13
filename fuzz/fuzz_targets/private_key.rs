#![no_main]
// Key files come from users' disks: decoding (and decrypting with a fixed
// passphrase) must never panic.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut pass = || Ok(zeroize::Zeroizing::new("fuzz".to_string()));
    let _ = jobseal_issue::keys::decode_private_key(data, &mut pass);
    let _ = jobseal_issue::keys::decode_pkcs12(data, "fuzz");
});
