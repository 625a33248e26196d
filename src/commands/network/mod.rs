//! `berth network`: create, list, inspect, remove and prune the CNI networks
//! containers join with `--network`.

use super::GlobalArgs;
use super::images::format;
use crate::printer::Printer;
use berth_containers::network::NetworkError;
use berth_containers::network::networks::{self, CreateOptions, Network};
use berth_containers::{self as container, ContainerRecord};
use berth_store::Store;
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};
use std::io::Write as _;
use std::process::ExitCode;

/// The subcommands of `berth network`.
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a bridge network.
    Create(CreateArgs),
    /// List the networks.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show networks as JSON.
    Inspect(NamesArgs),
    /// Remove networks.
    #[command(alias = "remove")]
    Rm(NamesArgs),
    /// Remove every user network no container uses.
    Prune(PruneArgs),
}

/// Arguments of `berth network create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The subnet in CIDR form (default: the first free one from 172.17.0.0/16 on).
    #[arg(long, value_name = "CIDR")]
    pub subnet: Option<String>,
    /// The gateway (default: the subnet's first address).
    #[arg(long, value_name = "IP")]
    pub gateway: Option<String>,
    /// The driver: only bridge.
    #[arg(short, long, default_value = "bridge")]
    pub driver: String,
    /// The network's name.
    pub name: String,
}

/// Arguments of `berth network ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only the network ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// Full network ids.
    #[arg(long)]
    pub no_trunc: bool,
}

/// Arguments naming networks.
#[derive(Debug, Args)]
pub struct NamesArgs {
    /// The networks: names or ids.
    #[arg(value_name = "NETWORK", required = true)]
    pub networks: Vec<String>,
}

/// Arguments of `berth network prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not ask (berth never asks; accepted for docker's scripts).
    #[arg(short, long)]
    pub force: bool,
}

/// Runs `berth network …`.
pub fn run(
    command: &NetworkCommand,
    global: &GlobalArgs,
    printer: Printer,
) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    match command {
        NetworkCommand::Create(args) => create(&store, args, printer),
        NetworkCommand::Ls(args) => ls(&store, args, printer),
        NetworkCommand::Inspect(args) => inspect(&store, args, printer),
        NetworkCommand::Rm(args) => rm(&store, args, printer),
        NetworkCommand::Prune(_) => prune(&store, printer),
    }
}

/// docker's exit code for a failed network command.
const FAILED: u8 = 1;

fn create(store: &Store, args: &CreateArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    if args.driver != "bridge" {
        printer.error_message(format!(
            "network driver '{}' is not supported: berth creates bridge networks",
            args.driver
        ));
        return Ok(ExitCode::from(FAILED));
    }
    let options = CreateOptions {
        subnet: args.subnet.clone(),
        gateway: args.gateway.clone(),
    };
    match networks::create(store, &args.name, &options) {
        Ok(network) => {
            writeln!(printer.stdout(), "{}", network.id)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            printer.error(&e);
            Ok(ExitCode::from(FAILED))
        }
    }
}

/// The rows `ls` shows: every CNI network, then docker's host and none.
fn ls(store: &Store, args: &LsArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    networks::ensure_default(store)?;
    let mut rows: Vec<Vec<String>> = networks::list(store)?
        .iter()
        .map(|n| {
            vec![
                n.id.clone(),
                n.name.clone(),
                n.driver().to_owned(),
                "local".to_owned(),
            ]
        })
        .collect();
    for (name, driver) in [("host", "host"), ("none", "null")] {
        rows.push(vec![
            berth_store::Digest::of(name.as_bytes()).hex().to_owned(),
            name.to_owned(),
            driver.to_owned(),
            "local".to_owned(),
        ]);
    }
    if !args.no_trunc {
        for row in &mut rows {
            row[0].truncate(12);
        }
    }
    let mut out = printer.stdout();
    if args.quiet {
        for row in rows {
            writeln!(out, "{}", row[0])?;
        }
    } else {
        write!(
            out,
            "{}",
            format::table(&["NETWORK ID", "NAME", "DRIVER", "SCOPE"], &rows)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The containers attached to `network`.
fn users<'a>(records: &'a [ContainerRecord], network: &Network) -> Vec<&'a ContainerRecord> {
    records
        .iter()
        .filter(|r| {
            r.network
                .as_ref()
                .is_some_and(|e| e.network == network.name)
        })
        .collect()
}

/// docker's `network inspect` document of one network.
fn describe(network: &Network, records: &[ContainerRecord]) -> Value {
    let config: Vec<Value> = network
        .subnets()
        .iter()
        .map(|(subnet, gateway)| {
            let mut c = json!({"Subnet": subnet.to_string()});
            if let Some(g) = gateway {
                c["Gateway"] = g.to_string().into();
            }
            c
        })
        .collect();
    let mut containers = Map::new();
    for r in users(records, network) {
        let ip = r.network.as_ref().and_then(|e| e.ip);
        let prefix = network
            .subnets()
            .first()
            .map(|(s, _)| s.prefix)
            .unwrap_or(32);
        containers.insert(
            r.id.clone(),
            json!({
                "Name": r.name,
                "IPv4Address": ip.map(|ip| format!("{ip}/{prefix}")).unwrap_or_default(),
                "IPv6Address": "",
            }),
        );
    }
    let mut options = Map::new();
    if let Some(bridge) = network.bridge() {
        options.insert(
            "com.docker.network.bridge.name".into(),
            bridge.to_owned().into(),
        );
    }
    json!({
        "Name": network.name,
        "Id": network.id,
        "Scope": "local",
        "Driver": network.driver(),
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": {}, "Config": config},
        "Internal": false,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": options,
        "Labels": {},
        "ConfigFile": network.path.display().to_string(),
    })
}

fn inspect(store: &Store, args: &NamesArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let records = container::list(store)?;
    let mut found = Vec::new();
    let mut code = ExitCode::SUCCESS;
    for wanted in &args.networks {
        match networks::find(store, wanted) {
            Ok(network) => found.push(describe(&network, &records)),
            Err(e) => {
                printer.error(&e);
                code = ExitCode::from(FAILED);
            }
        }
    }
    writeln!(
        printer.stdout(),
        "{}",
        serde_json::to_string_pretty(&found)?
    )?;
    Ok(code)
}

fn rm(store: &Store, args: &NamesArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let records = container::list(store)?;
    let mut code = ExitCode::SUCCESS;
    for wanted in &args.networks {
        let removed = networks::find(store, wanted).and_then(|network| {
            let names: Vec<String> = users(&records, &network)
                .iter()
                .map(|r| r.name.clone())
                .collect();
            networks::remove(store, &network.name, &names)
        });
        match removed {
            Ok(_) => writeln!(printer.stdout(), "{wanted}")?,
            Err(e) => {
                printer.error(&e);
                code = ExitCode::from(FAILED);
            }
        }
    }
    Ok(code)
}

fn prune(store: &Store, printer: Printer) -> anyhow::Result<ExitCode> {
    let records = container::list(store)?;
    let mut removed = Vec::new();
    for network in networks::list(store)? {
        if network.read_only
            || networks::RESERVED.contains(&network.name.as_str())
            || !users(&records, &network).is_empty()
        {
            continue;
        }
        match networks::remove(store, &network.name, &[]) {
            Ok(_) => removed.push(network.name),
            // Taken meanwhile, or removed by another prune.
            Err(NetworkError::InUse { .. } | NetworkError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut out = printer.stdout();
    if !removed.is_empty() {
        writeln!(out, "Deleted Networks:")?;
        for name in removed {
            writeln!(out, "{name}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
