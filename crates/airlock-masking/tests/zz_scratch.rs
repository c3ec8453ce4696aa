#![allow(clippy::unwrap_used)]
use airlock_core::{Operation, Plane, ResourceScope};
use airlock_masking::{JsonMasker, Masker, TokenKey};
#[test]
fn scratch() {
    for f in std::fs::read_dir("/work/main/fuzz/artifacts/json_masker").unwrap() {
        let data = std::fs::read(f.unwrap().path()).unwrap();
        let m = JsonMasker::builder(TokenKey::new([7u8; 32]).unwrap()).build();
        let read = Operation::new(
            "Microsoft.Web/sites/read",
            Plane::Management,
            ResourceScope::new("/s"),
        );
        for ct in ["text/plain"] {
            let first = m.mask(&read, Some(ct), &data).unwrap();
            println!("{ct}: {:?}", first.paths);
            let Some(body) = first.body else { continue };
            println!("{:?}", String::from_utf8_lossy(&body));
            let again = m.mask(&read, Some(ct), &body).unwrap();
            println!("again {:?}", again.paths);
            if let Some(b) = again.body {
                println!("{:?}", String::from_utf8_lossy(&b));
            }
        }
    }
}
