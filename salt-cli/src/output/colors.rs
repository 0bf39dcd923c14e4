//! Salt's terminal colours (`salt/utils/color.py:get_colors`, `salt/utils/textformat.py`).

/// The colour codes an outputter uses; all empty when colour is off.
#[derive(Debug, Clone, Copy)]
pub struct Colors {
    pub red: &'static str,
    pub green: &'static str,
    pub light_yellow: &'static str,
    pub cyan: &'static str,
    pub blue: &'static str,
    pub magenta: &'static str,
    pub light_red: &'static str,
    pub light_green: &'static str,
    pub light_blue: &'static str,
    pub light_magenta: &'static str,
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
                blue: "\x1b[0;34m",
                magenta: "\x1b[0;35m",
                light_red: "\x1b[0;1;31m",
                light_green: "\x1b[0;1;32m",
                light_blue: "\x1b[0;1;34m",
                light_magenta: "\x1b[0;1;35m",
                endc: "\x1b[0;0m",
            }
        } else {
            Colors {
                red: "",
                green: "",
                light_yellow: "",
                cyan: "",
                blue: "",
                magenta: "",
                light_red: "",
                light_green: "",
                light_blue: "",
                light_magenta: "",
                endc: "",
            }
        }
    }
}
