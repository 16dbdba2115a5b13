#![no_main]
// The launch service's protocol (spec §14.14.2): a request, a reply or a
// client message from an untrusted peer never panics, and a request that
// decodes encodes back to the same bytes.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    use jobseal_launch_proto::{ClientMessage, Reply, Request};
    if let Ok(request) = Request::decode(data) {
        assert_eq!(request.encode(), data);
    }
    let _ = Reply::decode(data);
    let _ = ClientMessage::decode(data);
});
