fn main() {
    println!("cargo:rerun-if-changed=csrc/helpers.c");
    cc::Build::new()
        .file("csrc/helpers.c")
        .warnings(true)
        .compile("weft_helpers");
}
