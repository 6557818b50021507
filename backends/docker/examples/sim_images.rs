//! Builds (or finds) the sim images and prints their tags: `cargo run -p paas-docker --example sim_images`.
//! The `paas-node` binary is taken from PAAS_NODE_BINARY or next to this executable.

use paas_docker::images::{self, ImageInputs, ImageProgress};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let docker = paas_docker::connect_docker().await?;
    let inputs = ImageInputs::from_env()?;
    let tags = images::ensure(&docker, &inputs, &|event| match event {
        ImageProgress::Present { tag } => println!("{tag}: present"),
        ImageProgress::Building { tag } => println!("{tag}: building"),
        ImageProgress::Output { line, .. } => println!("  {line}"),
        ImageProgress::Built { tag, seconds } => println!("{tag}: built in {seconds:.1}s"),
    })
    .await?;
    println!("{}", tags.node);
    Ok(())
}
