//! Stands in for the `berth` binary in this crate's tests and examples: it
//! exposes the same hidden subcommands, `shim` and `init`.

fn main() {
    let mut args = std::env::args_os().skip(1);
    let code = match args.next().as_ref().and_then(|a| a.to_str()) {
        Some("shim") => berth_runtime::shim::run(args.collect()),
        Some("init") => berth_runtime::init::run(args.collect()),
        _ => {
            eprintln!("usage: berth-runtime-test-shim shim ARGS... | init -- COMMAND [ARG...]");
            2
        }
    };
    std::process::exit(code);
}
