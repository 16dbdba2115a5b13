#![no_main]
// CRL DER: the raw splitter and the structured decoder.
use der::Decode;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = jobseal_core::tlv::RawCrl::split(data);
    let _ = <x509_cert::crl::CertificateList>::from_der(data);
});
