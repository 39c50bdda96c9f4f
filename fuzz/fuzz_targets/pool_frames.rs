//! The worker pipe: frames (`pool::protocol::read_frame`) read from an arbitrary byte
//! stream, each body decoded as a request (what a worker reads) and as a reply (what the
//! signer reads). A decoded message must encode to a frame that decodes to the same message.
#![no_main]

use hwsigner::pool::protocol::{Reply, Request, read_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut stream = data;
    loop {
        // A declared length far past the input only makes read_frame allocate (up to its
        // 64 MiB limit) before failing on the short read: at that cost a run takes 10 ms,
        // so such frames stop the stream here; shorter overruns still reach read_frame.
        if let [a, b, c, d, rest @ ..] = stream
            && u32::from_be_bytes([*a, *b, *c, *d]) as usize > rest.len() + (64 << 10)
        {
            return;
        }
        let Ok(Some(body)) = read_frame(&mut stream) else { return };
        if let Ok(request) = Request::decode(&body) {
            let frame = request.encode();
            let mut r = &frame[..];
            let body = read_frame(&mut r).expect("an encoded request is one frame").expect("an encoded request is not empty");
            let again = Request::decode(&body).unwrap_or_else(|e| panic!("an encoded request does not decode: {e}"));
            assert_eq!(&again.encode()[..], &frame[..], "a request changes through encode and decode");
        }
        if let Ok(reply) = Reply::decode(&body) {
            let frame = reply.encode();
            let mut r = &frame[..];
            let body = read_frame(&mut r).expect("an encoded reply is one frame").expect("an encoded reply is not empty");
            let again = Reply::decode(&body).unwrap_or_else(|e| panic!("an encoded reply does not decode: {e}"));
            assert_eq!(again.encode(), frame, "a reply changes through encode and decode");
        }
    }
});
