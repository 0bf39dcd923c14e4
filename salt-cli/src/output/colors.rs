//! Salt's terminal colours (`salt/utils/color.py:get_colors`, `salt/utils/textformat.py`).

/// The colour codes an outputter uses; all empty when colour is off.
#[derive(Debug, Clone, Copy)]
pub struct Colors {
    pub red: &'static str,
    pub green: &'static str,
    pub light_yellow: &'static str,
    pub cyan: &'static str,
    pub endc: &'static str,
}

impl Colors {
    /// `get_colors(use)`: ANSI codes, or empty strings.
    pub fn new(on: bool) -> Self {
        if on {
            Colors {
                red: "\x1b[0;31m",
                green: "\x1b[0;32m",
                light_yellow: "\x1b[0;1;33m",
                cyan: "\x1b[0;36m",
                endc: "\x1b[0;0m",
            }
        } else {
            Colors { red: "", green: "", light_yellow: "", cyan: "", endc: "" }
        }
    }
}
