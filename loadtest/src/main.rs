//! `boxoffice-loadtest`: plays a scenario against a boxoffice server on
//! loopback and checks every promise (docs/loadtest.md).

fn main() -> anyhow::Result<()> {
    anyhow::bail!("boxoffice-loadtest: the driver is not built yet")
}
