//! Copies every built policy component into a directory: `cargo run -p portcullis-artifacts
//! -- target/wasm` (the default). Adversarial guests go into `adversarial/` below it.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/wasm".to_owned()),
    );
    let mut copied = 0;
    for (name, path, example) in portcullis_artifacts::ALL {
        let dest_dir = if *example {
            dir.clone()
        } else {
            dir.join("adversarial")
        };
        let dest = dest_dir.join(format!("{name}.wasm"));
        let result = std::fs::create_dir_all(&dest_dir).and_then(|()| std::fs::copy(path, &dest));
        match result {
            Ok(bytes) => {
                println!("{:>9} bytes  {}", bytes, dest.display());
                copied += 1;
            }
            Err(e) => {
                eprintln!("error: copying `{name}` to `{}`: {e}", dest.display());
                return ExitCode::FAILURE;
            }
        }
    }
    println!("{copied} components in {}", dir.display());
    ExitCode::SUCCESS
}
