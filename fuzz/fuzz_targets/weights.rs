//! The checkpoint loader on arbitrary bytes: any input must give `Ok` or a typed error, never a panic,
//! an abort or an allocation the file does not justify.
#![no_main]

use diffscope::weights::Weights;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut w) = Weights::from_bytes(data, "fuzz.safetensors") else {
        return;
    };
    let names: Vec<String> = w.names().map(String::from).collect();
    for (i, n) in names.iter().enumerate() {
        let shape = w.shape_of(n).map(<[usize]>::to_vec).unwrap_or_default();
        // Alternate the accessors so both the float and the integer paths run.
        if i % 2 == 0 {
            let _ = w.take(n, &shape);
        } else {
            let _ = w.take_ints(n);
        }
    }
    let _ = w.take("missing", &[1]);
    let _ = w.finish();
});
