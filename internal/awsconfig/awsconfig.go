// Package awsconfig loads the AWS configuration of Freshet's command-line tools
// (freshet-leases, freshet-queue): the default credentials chain and region, an optional
// shared-config profile, and an optional endpoint that points every client at another
// implementation of the services, such as freshet-engine on loopback.
//
// It sits before every service client a command creates; nothing in the library
// packages uses it (they take clients from their callers).
package awsconfig

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// ErrNoRegion is returned by Load when neither the settings nor the environment name a
// region.
var ErrNoRegion = errors.New("no AWS region: set --region, AWS_REGION or a profile's region")

// Settings are a command's AWS flags.
type Settings struct {
	// Endpoint, when set, is the base URL of every client (http:// or https://).
	Endpoint string
	// Region overrides the environment's region. With Endpoint set and no region
	// anywhere, us-east-1 is used.
	Region string
	// Profile selects a shared-config profile.
	Profile string
}

// Register adds the --endpoint, --region and --profile flags to fs; endpointUse names
// the services the endpoint serves in the flag's help.
func (s *Settings) Register(fs *flag.FlagSet, endpointUse string) {
	fs.StringVar(&s.Endpoint, "endpoint", s.Endpoint, endpointUse+" endpoint URL (default: AWS)")
	fs.StringVar(&s.Region, "region", s.Region, "AWS region (default: from the environment or shared config; us-east-1 with --endpoint)")
	fs.StringVar(&s.Profile, "profile", s.Profile, "shared config profile")
}

// ValidateEndpoint checks that endpoint is empty or an http:// or https:// URL with a host.
func ValidateEndpoint(endpoint string) error {
	if endpoint == "" {
		return nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || (!strings.HasPrefix(endpoint, "http://") && !strings.HasPrefix(endpoint, "https://")) || u.Host == "" {
		return fmt.Errorf("endpoint %q: want an http:// or https:// URL", endpoint)
	}
	return nil
}

// Load returns the configuration for s. A loopback endpoint gets placeholder static
// credentials when the default chain finds none, since a local engine accepts any.
func Load(ctx context.Context, s Settings) (aws.Config, error) {
	if err := ValidateEndpoint(s.Endpoint); err != nil {
		return aws.Config{}, err
	}
	var opts []func(*config.LoadOptions) error
	if s.Region != "" {
		opts = append(opts, config.WithRegion(s.Region))
	}
	if s.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(s.Profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	if s.Endpoint != "" {
		cfg.BaseEndpoint = aws.String(s.Endpoint)
		if cfg.Region == "" {
			cfg.Region = "us-east-1"
		}
		if IsLoopback(s.Endpoint) {
			if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
				cfg.Credentials = credentials.NewStaticCredentialsProvider("freshet", "freshet", "")
			}
		}
	}
	if cfg.Region == "" {
		return aws.Config{}, ErrNoRegion
	}
	return cfg, nil
}

// IsLoopback reports whether endpoint names a loopback host.
func IsLoopback(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
