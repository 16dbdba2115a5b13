#![no_main]
// Names, the TLV walker, VOMS ACs and the JobBinding/ProxyCertInfo decoders.
use der::Decode;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = jobseal_core::name::canonical(data);
    let _ = jobseal_core::name::openssl_hash(data);
    let _ = jobseal_core::name::to_slash_string(data);
    let _ = jobseal_core::name::split_last_cn(data);
    let _ = jobseal_core::tlv::RawCert::split(data);
    let _ = jobseal_core::voms::parse_ac_seq(data);
    if let Ok(acs) = jobseal_core::voms::split_ac_seq(data) {
        for ac in acs {
            let _ = jobseal_core::voms::parse_ac(ac);
        }
    }
    let _ = jobseal_core::voms::parse_ac(data);
    let _ = jobseal_core::voms::read_ac_lenient(data);
    let _ = jobseal_core::asn1::key_usage_bits(data);
    if let Ok(b) = jobseal_core::asn1::JobBinding::from_der(data) {
        let _ = b.sha256();
    }
    let _ = jobseal_core::asn1::ProxyCertInfo::from_der(data);
});
