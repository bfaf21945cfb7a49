// Package envflag lets every flag of a flag.FlagSet also be set from the
// environment, as PREFIX_<NAME> with dashes as underscores, the command
// line winning over the environment.
package envflag

import (
	"flag"
	"fmt"
	"strings"
)

// Parse sets each flag of fs that args do not name from the variable
// prefix + "_" + its upper-cased name (e.g. LOGVIEWER_HTTP_ADDR for
// --http-addr), then parses args. An invalid value in the environment is an
// error that names the variable.
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
	return fs.Parse(args)
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
