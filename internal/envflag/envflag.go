// Package envflag lets every flag of a flag.FlagSet also be set from the
// environment, as PREFIX_<NAME> with dashes as underscores, the command
// line winning over the environment.
package envflag

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Parse sets each flag of fs that args do not name from the variable
// prefix + "_" + its upper-cased name (e.g. LOGVIEWER_HTTP_ADDR for
// --http-addr), then parses args. An invalid value in the environment is an
// error that names the variable. Args are parsed as by ParseArgs.
func Parse(fs *flag.FlagSet, args []string, prefix string, getenv func(string) string) error {
	given := map[string]bool{}
	for _, a := range args {
		if name, ok := flagName(a); ok {
			given[name] = true
		}
	}
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		env := VarName(prefix, f.Name)
		v := getenv(env)
		if v == "" || given[f.Name] || envErr != nil {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			envErr = fmt.Errorf("invalid value %q for %s: %w", v, env, err)
		}
	})
	if envErr != nil {
		return envErr
	}
	return ParseArgs(fs, args)
}

// ParseArgs parses args into fs. A bad command line prints nothing (the
// flag package would print the whole usage): the error says what is wrong
// in one line, for the caller to print. -h prints the usage to fs's output
// and returns flag.ErrHelp.
func ParseArgs(fs *flag.FlagSet, args []string) error {
	out := fs.Output()
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.SetOutput(out)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.Usage()
		return err
	case err != nil:
		return fmt.Errorf("%w (see -h)", err)
	}
	return nil
}

// VarName is the environment variable that sets the flag name.
func VarName(prefix, name string) string {
	return prefix + "_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// flagName returns the flag named by a command-line argument such as
// "--http-addr=:1" or "-dns".
func flagName(arg string) (string, bool) {
	if !strings.HasPrefix(arg, "-") || arg == "-" || arg == "--" {
		return "", false
	}
	name := strings.TrimLeft(arg, "-")
	if i := strings.IndexByte(name, '='); i >= 0 {
		name = name[:i]
	}
	return name, name != ""
}
