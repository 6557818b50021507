//! `paas aws` end to end: the binary against a moto server on 127.0.0.1 (never real AWS).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Moto(Child, u16);

impl Moto {
    fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run moto_server ({e}): install it with pip install 'moto[server]'"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not listen within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto(child, port)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `paas aws <args>` against moto with fixed fake credentials and no AWS files.
fn paas(moto: &Moto, dir: &Path, args: &[&str]) -> Output {
    let spec = dir.join("paas.toml");
    Command::new(env!("CARGO_BIN_EXE_paas"))
        .current_dir(dir)
        .args([
            "--spec",
            spec.to_str().unwrap(),
            "--state-dir",
            dir.join(".paas").to_str().unwrap(),
            "aws",
        ])
        .args(args)
        .args(["--endpoint-url", &format!("http://127.0.0.1:{}", moto.1), "--region", "eu-west-1"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap()
}

fn ok(out: Output) -> serde_json::Value {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn aws_plan_up_scale_and_down_against_moto() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("paas.toml"),
        "name = \"cli\"\ndomain = \"cli.example.net\"\nadmin_cidrs = [\"192.0.2.0/24\"]\n[aws]\nami = \"ami-03cf127a\"\n",
    )
    .unwrap();
    let plan = ok(paas(&moto, dir.path(), &["plan", "--azs", "3", "-o", "json"]));
    assert!(plan["steps"].as_array().unwrap().len() > 30);
    let up = ok(paas(&moto, dir.path(), &["up", "--azs", "3", "-o", "json"]));
    assert_eq!(up["status"]["nodes"].as_array().unwrap().len(), 11);
    let again = ok(paas(&moto, dir.path(), &["up", "--azs", "3", "-o", "json"]));
    assert!(again["outcome"]["plan"]["steps"].as_array().unwrap().is_empty());
    let scaled = ok(paas(&moto, dir.path(), &["scale", "slaves", "7", "--azs", "3", "-o", "json"]));
    assert_eq!(scaled["outcome"]["report"]["done"].as_array().unwrap().len(), 2);
    let down = ok(paas(&moto, dir.path(), &["down", "-o", "json"]));
    assert!(down["outcome"]["report"]["done"].as_array().unwrap().len() > 30);
    let status = ok(paas(&moto, dir.path(), &["status", "-o", "json"]));
    assert_eq!(status["resources"], 0);
}
