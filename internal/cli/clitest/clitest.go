// Package clitest is the test harness of the command-line tools under cmd/: a TestMain
// that isolates the AWS configuration the tools load from the machine's, and that runs
// the tool's main instead of its tests in the child processes of exit-status tests.
package clitest

import (
	"os"
	"testing"
)

// Main is a tool's TestMain. When the environment variable mainEnv is "1" it runs
// main and exits 0 (a test re-executes its binary that way to check the tool's exit
// status). Otherwise it gives the default credentials chain static credentials and
// region, keeps it away from the machine's AWS files and instance metadata, and runs
// the tests.
func Main(m *testing.M, mainEnv string, main func()) {
	if os.Getenv(mainEnv) == "1" {
		main()
		os.Exit(0)
	}
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           "freshet",
		"AWS_SECRET_ACCESS_KEY":       "freshet",
		"AWS_SESSION_TOKEN":           "",
		"AWS_PROFILE":                 "",
		"AWS_REGION":                  "us-east-1",
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		if v == "" {
			_ = os.Unsetenv(k)
		} else {
			_ = os.Setenv(k, v)
		}
	}
	os.Exit(m.Run())
}
