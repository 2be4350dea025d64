//! The TLS session, while it waits for a ClientHello, takes any bytes in any split without panicking,
//! stays within its bounds, reads the same ClientHello however the bytes were cut, and once failed takes
//! nothing more. The first byte seeds where the reads are cut.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spawngate::tls::session::{ClientHelloFacts, TlsSession, MAX_HELLO_BYTES};
use spawngate_fuzz::Cuts;

/// The ClientHello read (if any), whether the session failed, and the bytes it took.
type Outcome = (Option<ClientHelloFacts>, bool, usize);

fn accept(input: &[u8], cuts: &[usize]) -> Outcome {
    let mut session = TlsSession::default();
    let mut taken = 0;
    for &end in cuts.iter().chain(std::iter::once(&input.len())) {
        if end <= taken {
            continue;
        }
        let chunk = &input[taken..end];
        match session.feed(chunk) {
            Ok(n) => {
                assert!(n <= chunk.len());
                taken += n;
                assert!(session.hello_bytes().len() <= MAX_HELLO_BYTES);
                assert_eq!(session.client_hello().is_some(), session.awaiting_config());
                if n < chunk.len() {
                    // Only a ClientHello waiting for its config refuses bytes here.
                    assert!(session.awaiting_config());
                    break;
                }
            }
            Err(_) => {
                assert!(session.has_failed());
                assert!(!session.wants_read());
                assert_eq!(session.feed(chunk).ok(), Some(0));
                let mut alert = Vec::new();
                while session.wants_write() {
                    let _ = session.pending_tls_out(&mut alert);
                }
                break;
            }
        }
    }
    assert_eq!(session.write_plaintext(b"x"), 0, "no plaintext before a config");
    (session.client_hello().cloned(), session.has_failed(), taken)
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, input)) = data.split_first() else {
        return;
    };
    let cuts = Cuts::seeded(seed).points(usize::from(seed % 32), input.len());
    let (facts, failed, _) = accept(input, &cuts);
    let (whole_facts, whole_failed, _) = accept(input, &[]);
    assert_eq!(facts, whole_facts, "the same ClientHello however it was cut");
    assert_eq!(failed, whole_failed);
});
