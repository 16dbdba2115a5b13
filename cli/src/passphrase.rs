//! Asking for a passphrase once: from the terminal, or from stdin.

use jobseal_issue::IssueError;
use zeroize::Zeroizing;

/// A prompt that asks at most once and remembers the answer.
pub fn prompter(from_stdin: bool) -> impl FnMut(&str) -> Result<Zeroizing<String>, IssueError> {
    let mut cached: Option<Zeroizing<String>> = None;
    move |prompt: &str| {
        if let Some(p) = &cached {
            return Ok(p.clone());
        }
        let pass = if from_stdin {
            let mut line = Zeroizing::new(String::new());
            std::io::stdin().read_line(&mut line).map_err(|e| {
                IssueError::Key(format!("cannot read the passphrase from stdin: {e}"))
            })?;
            Zeroizing::new(line.trim_end_matches(['\n', '\r']).to_string())
        } else {
            rpassword::prompt_password(prompt)
                .map(Zeroizing::new)
                .map_err(|e| {
                    IssueError::Key(format!(
                        "cannot ask for the passphrase ({e}); use --pwstdin"
                    ))
                })?
        };
        cached = Some(pass.clone());
        Ok(pass)
    }
}
