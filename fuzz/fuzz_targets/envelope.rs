//! The Kafka record decoder (apply's input) on arbitrary bytes: an error or a record,
//! never a panic; the fast decoder answers exactly as the reference decoder does
//! (same record, or the same error); and what it accepts survives a round trip:
//! encoding the decoded change and decoding it again gives the same record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use otter_core::codec::{
    decode_reference, decode_with_epoch, encode_change_as, encode_schema_change_as, Record,
};

fuzz_target!(|data: &[u8]| {
    let decoded = decode_with_epoch(data);
    match (&decoded, &decode_reference(data)) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "fast vs reference on {}", String::from_utf8_lossy(data)),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        (a, b) => panic!("fast {a:?} vs reference {b:?} on {}", String::from_utf8_lossy(data)),
    }
    let Ok((record, epoch)) = decoded else {
        return;
    };
    let mut out = Vec::new();
    match &record {
        Record::Change { event, part } => {
            encode_change_as(&mut out, event, *part, 0, epoch)
                .expect("a decoded change encodes again");
        }
        Record::Schema(sc) => encode_schema_change_as(&mut out, sc, 0, epoch),
    }
    let (again, epoch_again) = decode_with_epoch(&out).expect("an encoded record decodes");
    assert_eq!(again, record, "round trip of {}", String::from_utf8_lossy(data));
    assert_eq!(epoch_again, epoch);
});
