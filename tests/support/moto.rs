//! A moto server (a local AWS API emulator) on 127.0.0.1 for `paas aws` runs; never real AWS.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running `moto_server`, stopped on drop.
pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Moto {
    /// Starts moto on a free port and waits until it listens. Panics naming what is missing.
    pub fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run moto_server ({e}): install it with scripts/install-deps or pip install 'moto[server]'"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen on 127.0.0.1:{port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto { child, port }
    }

    /// Runs `paas --spec <dir>/paas.toml --state-dir <dir>/.paas aws <args>` against this
    /// server, with fixed fake credentials and no AWS configuration files or metadata service.
    pub fn paas(&self, dir: &Path, args: &[&str]) -> Output {
        self.paas_with(dir, &["--spec", "paas.toml"], args)
    }

    /// Runs `paas <global> --state-dir <dir>/.paas aws <args>` in `dir` against this server.
    pub fn paas_with(&self, dir: &Path, global: &[&str], args: &[&str]) -> Output {
        self.run(Path::new(env!("CARGO_BIN_EXE_paas")), dir, global, args)
    }

    /// Runs `<paas> <global> --state-dir <dir>/.paas aws <args>` in `dir` against this server,
    /// for a `paas` executable other than the one built for the tests (a link of it elsewhere).
    pub fn run(&self, paas: &Path, dir: &Path, global: &[&str], args: &[&str]) -> Output {
        Command::new(paas)
            .current_dir(dir)
            .args(global)
            .args(["--state-dir", ".paas", "aws"])
            .args(args)
            .args([
                "--endpoint-url",
                &format!("http://127.0.0.1:{}", self.port),
                "--region",
                "eu-west-1",
            ])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
