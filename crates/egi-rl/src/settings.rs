//! One definition per settings struct: [`settings!`] declares the struct a config file is
//! read into (serde: missing keys take their defaults, unknown keys are refused) and, from
//! the same field list, the command-line flags that override it (clap: one `--flag` per key,
//! the field's doc comment as its help). The flags are all optional: a flag given sets its
//! key, an absent one leaves the file's value.
//!
//! Written by hand because no crate does both halves from one list: clap and serde each
//! derive from a struct, but a config file needs `T` with defaults where the flags need
//! `Option<T>` (given or not).

/// What a flag's value does to its key: a plain key takes it, an optional key (`Option<T>`)
/// takes `Some` of it.
pub trait SetFrom<F> {
    fn set_from(&mut self, v: F);
}

impl<T> SetFrom<T> for T {
    fn set_from(&mut self, v: T) {
        *self = v;
    }
}

impl<T> SetFrom<T> for Option<T> {
    fn set_from(&mut self, v: T) {
        *self = Some(v);
    }
}

/// ```text
/// settings! {
///     /// The struct's doc.
///     pub struct Config, flags ConfigFlags {
///         /// The key's doc, also the flag's help.
///         max_steps: usize = 100, flag usize [value_name = "N"];
///         limit: Option<usize> = None, flag usize [];
///         layers: Option<Vec<usize>> = None, flag String [] => parse_layers;
///     }
/// }
/// ```
/// declares `Config` (serde, `Default` from the `= value`s) and `ConfigFlags` (clap::Args:
/// `--max-steps N`, ...; the bracket holds extra `#[arg(...)]` settings), with
/// `ConfigFlags::apply(&self, &mut Config) -> anyhow::Result<()>`. `=> f` converts the flag's
/// value with `f(&F) -> anyhow::Result<T>`.
#[macro_export]
macro_rules! settings {
    (
        $(#[$meta:meta])*
        pub struct $name:ident, flags $flags:ident {
            $(
                $(#[doc = $doc:literal])*
                $field:ident : $ty:ty = $default:expr, flag $fty:ty [$($arg:tt)*] $(=> $conv:path)?;
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            $( $(#[doc = $doc])* pub $field: $ty, )*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $( $field: $default, )* }
            }
        }

        #[doc = concat!("Command-line flags over [`", stringify!($name), "`]: each sets the key of its name.")]
        #[derive(Debug, Clone, Default, clap::Args)]
        pub struct $flags {
            $( $(#[doc = $doc])* #[arg(long, $($arg)*)] pub $field: Option<$fty>, )*
        }

        impl $flags {
            /// Sets every key whose flag was given.
            pub fn apply(&self, c: &mut $name) -> anyhow::Result<()> {
                $(
                    if let Some(v) = &self.$field {
                        $crate::settings!(@set c.$field, v $(, $conv)?);
                    }
                )*
                Ok(())
            }
        }
    };
    (@set $c:ident.$field:ident, $v:ident) => {
        $crate::settings::SetFrom::set_from(&mut $c.$field, $v.clone())
    };
    (@set $c:ident.$field:ident, $v:ident, $conv:path) => {
        $c.$field = $conv($v)?
    };
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    crate::settings! {
        /// A test struct.
        pub struct Demo, flags DemoFlags {
            /// Steps.
            steps: usize = 100, flag usize [];
            /// A limit.
            limit: Option<usize> = None, flag usize [];
            /// Doubled on the way in.
            twice: u32 = 1, flag u32 [] => double;
        }
    }

    fn double(v: &u32) -> anyhow::Result<u32> {
        anyhow::ensure!(*v < 1000, "too big");
        Ok(v * 2)
    }

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        flags: DemoFlags,
    }

    fn parsed(args: &[&str]) -> anyhow::Result<Demo> {
        let cli = Cli::try_parse_from(std::iter::once("demo").chain(args.iter().copied()))?;
        let mut c: Demo = toml::from_str("steps = 7")?;
        cli.flags.apply(&mut c)?;
        Ok(c)
    }

    #[test]
    fn flags_override_only_the_keys_given() {
        let c = parsed(&[]).unwrap();
        assert_eq!((c.steps, c.limit, c.twice), (7, None, 1)); // file, default, default
        let c = parsed(&["--steps", "3", "--limit", "5", "--twice", "4"]).unwrap();
        assert_eq!((c.steps, c.limit, c.twice), (3, Some(5), 8));
        assert!(parsed(&["--twice", "5000"]).is_err());
        assert!(parsed(&["--nope", "1"]).is_err());
        assert!(
            toml::from_str::<Demo>("stepz = 1").is_err(),
            "unknown keys are refused"
        );
    }
}
