//! `berth top`: the processes of a running container, as `docker top` shows
//! them (`ps -ef` by default, or the `ps` options given after the name).

use super::GlobalArgs;
use crate::printer::Printer;
use berth_containers::{self as container, top};
use clap::Args;
use std::io::Write as _;
use std::process::ExitCode;

/// Arguments of `berth top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// The container: id, unique id prefix or name.
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Options for ps (default: -ef).
    #[arg(
        value_name = "ps OPTIONS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub ps_args: Vec<String>,
}

/// Prints the container's rows of `ps`.
pub fn run(args: &TopArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let record = container::find(&store, &args.container)?;
    let processes = top::top(&store, &record, &args.ps_args)?;
    let mut out = printer.stdout();
    write!(out, "{}", render(&processes))?;
    Ok(ExitCode::SUCCESS)
}

/// docker's layout of `top`: a tabwriter with cells at least 20 wide and 3
/// spaces of padding; the last cell (the command) is not padded.
fn render(processes: &top::Processes) -> String {
    let mut widths: Vec<usize> = processes.titles.iter().map(|t| t.chars().count()).collect();
    for row in &processes.rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: &[String]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            text.push_str(cell);
            if i + 1 < cells.len() {
                let width = (widths[i] + 3).max(20);
                text.push_str(&" ".repeat(width - cell.chars().count()));
            }
        }
        text + "\n"
    };
    let mut text = line(&processes.titles);
    for row in &processes.rows {
        text.push_str(&line(row));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_at_least_twenty_wide_like_docker() {
        let processes = top::Processes {
            titles: vec!["PID".into(), "CMD".into()],
            rows: vec![vec!["7".into(), "sleep 100".into()]],
        };
        assert_eq!(
            render(&processes),
            format!("PID{}CMD\n7{}sleep 100\n", " ".repeat(17), " ".repeat(19))
        );
    }
}
