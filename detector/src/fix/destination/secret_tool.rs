//! The Secret Service (GNOME Keyring, KeePassXC, KWallet's bridge) through `secret-tool`: each
//! key under the attributes `service detector name NAME`, labelled `detector: NAME`. The tool
//! reaches the service over the session D-Bus (`DBUS_SESSION_BUS_ADDRESS`), inherited.
use zeroize::Zeroizing;

use super::{secret_output, DestinationError, Entry, Tool, STORE_PREFIX};

const PACKAGE: &str = "libsecret-tools";

fn secret_tool(args: &[&str]) -> Tool {
    Tool::new("secret-tool", PACKAGE, args)
}

fn lookup_tool(name: &str) -> Tool {
    secret_tool(&["lookup", "service", STORE_PREFIX, "name", name])
}

/// A lookup that finds nothing exits 1 and says nothing; one that reached no service says
/// why (`Cannot autolaunch D-Bus without X11 $DISPLAY`).
fn answer(output: &std::process::Output) -> Answer {
    if output.status.success() {
        Answer::Found
    } else if output.status.code() == Some(1) && output.stderr.iter().all(u8::is_ascii_whitespace) {
        Answer::NotFound
    } else {
        Answer::Failed
    }
}

enum Answer {
    Found,
    NotFound,
    Failed,
}

/// Installed, and a Secret Service answers: a lookup of a name no key has either finds
/// nothing or finds it, but does not fail.
pub(super) fn check() -> Result<(), DestinationError> {
    let output = lookup_tool("DETECTOR_CHECK_SECRET_SERVICE").run(None)?;
    match answer(&output) {
        Answer::Found | Answer::NotFound => Ok(()),
        Answer::Failed => Err(DestinationError::NoSecretService {
            detail: super::first_line(&output.stderr),
        }),
    }
}

pub(super) fn lookup(name: &str) -> Result<Option<Zeroizing<String>>, DestinationError> {
    let tool = lookup_tool(name);
    let output = tool.run(None)?;
    match answer(&output) {
        Answer::Found => secret_output(output, &tool).map(Some),
        Answer::NotFound => Ok(None),
        Answer::Failed => Err(tool.failed(&output)),
    }
}

/// `secret-tool store --label='detector: NAME' service detector name NAME`, the value on
/// standard input. The service writes its keyring before the call returns.
pub(super) fn put(entries: &[Entry]) -> Result<(), DestinationError> {
    for entry in entries {
        let label = format!("--label={STORE_PREFIX}: {}", entry.name);
        let tool = secret_tool(&[
            "store",
            &label,
            "service",
            STORE_PREFIX,
            "name",
            &entry.name,
        ]);
        let output = tool.run(Some(&entry.secret))?;
        if !output.status.success() {
            return Err(tool.failed(&output));
        }
    }
    Ok(())
}
