//! The demo image of `run.sh`: busybox (from Debian's busybox-static) with
//! a page at /www/index.html, for a machine with no internet access.
//!
//! ```text
//! demo_image push 127.0.0.1:5000 demo/busybox 1   # into a registry
//! demo_image archive busybox.tar                    # for `berth image load`
//! ```

use berth_testkit::busybox_image;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let image = busybox_image().file("www/index.html", b"<h1>Hello from a Berth task</h1>\n".to_vec(), 0o644);
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["push", host, repo, tag] => image.push(host, repo, tag, None).map(|p| println!("{}", p.reference)),
        ["archive", path] => image.write_oci_archive(std::path::Path::new(path)).map(|()| println!("{path}")),
        _ => {
            eprintln!("usage: demo_image push HOST REPOSITORY TAG | demo_image archive FILE");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("demo_image: {e}");
        std::process::exit(1);
    }
}
