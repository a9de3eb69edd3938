//! The MCP servers as the writers show them: one row each, with a column per check.
use std::path::Path;

use crate::audit::{CheckEntry, FieldEntry, ServerEntry};

pub struct ServersView<'r> {
    /// Every check any server has, in the order first met: the columns of the server tables.
    pub check_names: Vec<&'r str>,
    pub rows: Vec<ServerView<'r>>,
}

pub struct ServerView<'r> {
    pub client: &'r str,
    pub server: &'r str,
    pub transport: &'r str,
    pub config: &'r Path,
    pub project: Option<&'r str>,
    /// The project, else `user:NAME` for a user's global config, else empty.
    pub scope: String,
    /// The host whose report listed it (set in merged reports).
    pub host: Option<&'r str>,
    /// The fields that carry secrets, each with its class.
    pub fields: &'r [FieldEntry],
    pub checks: &'r [CheckEntry],
    /// The server's result in each column of [`ServersView::check_names`], `None` where it
    /// was not checked.
    pub check_columns: Vec<Option<&'r CheckEntry>>,
}

impl<'r> ServersView<'r> {
    pub fn new(servers: &'r [ServerEntry]) -> ServersView<'r> {
        let mut check_names: Vec<&str> = Vec::new();
        for check in servers.iter().flat_map(|s| &s.checks) {
            if !check_names.contains(&check.check.as_str()) {
                check_names.push(&check.check);
            }
        }
        let rows = servers
            .iter()
            .map(|server| ServerView::new(server, &check_names))
            .collect();
        ServersView { check_names, rows }
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Every failed check, with the server it failed on.
    pub fn failed_checks(&self) -> impl Iterator<Item = (&ServerView<'r>, &'r CheckEntry)> {
        self.rows.iter().flat_map(|server| {
            server
                .checks
                .iter()
                .filter(|check| !check.pass)
                .map(move |check| (server, check))
        })
    }
}

impl<'r> ServerView<'r> {
    fn new(server: &'r ServerEntry, check_names: &[&str]) -> ServerView<'r> {
        let scope = match (&server.project, &server.user) {
            (Some(project), _) => project.clone(),
            (None, Some(user)) => format!("user:{user}"),
            (None, None) => String::new(),
        };
        let check_columns = check_names
            .iter()
            .map(|name| server.checks.iter().find(|c| c.check == *name))
            .collect();
        ServerView {
            client: &server.client,
            server: &server.server,
            transport: &server.transport,
            config: &server.config,
            project: server.project.as_deref(),
            scope,
            host: server.host.as_deref(),
            fields: &server.fields,
            checks: &server.checks,
            check_columns,
        }
    }
}
