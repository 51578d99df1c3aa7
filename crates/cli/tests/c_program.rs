//! `weft run` on a C program compiled for wasm32-wasi with clang and
//! wasi-libc: reads a file from `--dir`, writes output, exits with a chosen
//! status. Without the toolchain the test prints SKIPPED (and fails if
//! `WEFT_REQUIRE_WASI_CC=1`, as CI sets after installing it).

mod common;
use common::weft_cmd;

use std::path::{Path, PathBuf};
use std::process::Command;

fn compile_copy_upper(out_dir: &Path) -> Result<PathBuf, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/programs/copy_upper.c");
    let out = out_dir.join("copy_upper.wasm");
    let cc = std::env::var("WEFT_WASI_CC").unwrap_or_else(|_| "clang".into());
    let mut cmd = Command::new(&cc);
    cmd.args(["--target=wasm32-wasi", "-O2", "-o"])
        .arg(&out)
        .arg(&src);
    if let Ok(sysroot) = std::env::var("WEFT_WASI_SYSROOT") {
        cmd.arg(format!("--sysroot={sysroot}"));
    }
    match cmd.output() {
        Ok(o) if o.status.success() => Ok(out),
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr).trim().to_string()),
        Err(e) => Err(format!("cannot run {cc}: {e}")),
    }
}

#[test]
fn weft_run_a_compiled_c_program_with_a_preopened_dir() {
    let dir = std::env::temp_dir().join(format!("weft-cli-c-{}", std::process::id()));
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let wasm = match compile_copy_upper(&dir) {
        Ok(p) => p,
        Err(why) => {
            assert!(
                std::env::var("WEFT_REQUIRE_WASI_CC").as_deref() != Ok("1"),
                "WEFT_REQUIRE_WASI_CC=1 but copy_upper.c does not build: {why}"
            );
            eprintln!("SKIPPED: no wasm32-wasi C toolchain (clang, lld, wasi-libc): {why}");
            return;
        }
    };
    let text = "weft runs real programs\n";
    std::fs::write(data.join("in.txt"), text).unwrap();
    let out = weft_cmd()
        .arg("run")
        .arg(format!("--dir={}::data", data.display()))
        .arg(&wasm)
        .args(["data/in.txt", "data/out.txt", "42"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(42), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "copied {} bytes from data/in.txt to data/out.txt\n",
            text.len()
        )
    );
    assert_eq!(
        std::fs::read_to_string(data.join("out.txt")).unwrap(),
        text.to_uppercase()
    );
    // Outside the pre-opened directory nothing is reachable.
    let out = weft_cmd()
        .arg("run")
        .arg(format!("--dir={}::data", data.display()))
        .arg(&wasm)
        .args(["data/../../etc/passwd", "data/x.txt", "0"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!data.join("x.txt").exists());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn backtraces_name_source_lines_from_dwarf() {
    let dir = std::env::temp_dir().join(format!("weft-cli-dwarf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("divide.c");
    std::fs::write(
        &src,
        "#include <stdio.h>\n\
         static int divide(int a, int b) {\n\
         \x20   return a / b;\n\
         }\n\
         int main(int argc, char **argv) {\n\
         \x20   (void)argv;\n\
         \x20   printf(\"%d\\n\", divide(10, argc - 1));\n\
         \x20   return 0;\n\
         }\n",
    )
    .unwrap();
    let wasm = dir.join("divide.wasm");
    let cc = std::env::var("WEFT_WASI_CC").unwrap_or_else(|_| "clang".into());
    let built = Command::new(&cc)
        .args(["--target=wasm32-wasi", "-g", "-O0", "-o"])
        .arg(&wasm)
        .arg(&src)
        .output();
    match built {
        Ok(o) if o.status.success() => {}
        other => {
            let why = format!("{other:?}");
            assert!(
                std::env::var("WEFT_REQUIRE_WASI_CC").as_deref() != Ok("1"),
                "WEFT_REQUIRE_WASI_CC=1 but divide.c does not build: {why}"
            );
            eprintln!("SKIPPED: no wasm32-wasi C toolchain: {why}");
            return;
        }
    }
    let run = |details: bool| {
        let mut cmd = weft_cmd();
        cmd.arg(&wasm);
        if details {
            cmd.env("WEFT_BACKTRACE_DETAILS", "1");
        } else {
            cmd.env_remove("WEFT_BACKTRACE_DETAILS");
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(134));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let plain = run(false);
    assert!(plain.contains("divide (func["), "{plain}");
    assert!(plain.contains(" @ 0x"), "module offsets: {plain}");
    assert!(!plain.contains("divide.c:"), "{plain}");
    let detailed = run(true);
    // The division (line 3) in divide, the call (line 7) in main.
    let divide = detailed.find("divide.c:3").expect(&detailed);
    let main = detailed.find("divide.c:7").expect(&detailed);
    assert!(divide < main, "innermost first: {detailed}");
    let _ = std::fs::remove_dir_all(&dir);
}
