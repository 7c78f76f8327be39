package awsconfig

import (
	"context"
	"errors"
	"testing"
)

func TestIsLoopback(t *testing.T) {
	for endpoint, want := range map[string]bool{
		"http://127.0.0.1:4568": true, "http://localhost:4568": true, "http://[::1]:80": true,
		"https://dynamodb.us-east-1.amazonaws.com": false, "http://10.0.0.1:4568": false, "http://%zz": false,
	} {
		if got := IsLoopback(endpoint); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", endpoint, got, want)
		}
	}
}

func TestValidateEndpoint(t *testing.T) {
	for endpoint, ok := range map[string]bool{
		"": true, "http://127.0.0.1:4568": true, "https://kinesis.us-east-1.amazonaws.com": true,
		"localhost:4568": false, "ftp://127.0.0.1": false, "http://": false, "http://%zz": false,
	} {
		if err := ValidateEndpoint(endpoint); (err == nil) != ok {
			t.Errorf("ValidateEndpoint(%q) = %v, want ok %v", endpoint, err, ok)
		}
	}
}

// TestLoad: a loopback endpoint gets a default region and, with no credentials
// anywhere, placeholder ones; without an endpoint or region Load says so.
func TestLoad(t *testing.T) {
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_REGION": "", "AWS_DEFAULT_REGION": "",
		"AWS_PROFILE": "", "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true"} {
		t.Setenv(k, v)
	}
	ctx := context.Background()
	cfg, err := Load(ctx, Settings{Endpoint: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != "us-east-1" || *cfg.BaseEndpoint != "http://127.0.0.1:1" {
		t.Fatalf("region %q endpoint %v", cfg.Region, cfg.BaseEndpoint)
	}
	if c, err := cfg.Credentials.Retrieve(ctx); err != nil || c.AccessKeyID != "freshet" {
		t.Fatalf("credentials %+v, %v", c, err)
	}
	if _, err := Load(ctx, Settings{}); !errors.Is(err, ErrNoRegion) {
		t.Fatalf("no region: %v", err)
	}
	if _, err := Load(ctx, Settings{Endpoint: "localhost:1"}); err == nil {
		t.Fatal("bad endpoint accepted")
	}
	cfg, err = Load(ctx, Settings{Region: "eu-west-1"})
	if err != nil || cfg.Region != "eu-west-1" || cfg.BaseEndpoint != nil {
		t.Fatalf("region flag: %+v, %v", cfg.Region, err)
	}
}
