package fleet

import (
	"os"
	"go.uber.org/zap"
)

func init() {
	if p := os.Getenv("FLEET_LOG"); p != "" {
		c := zap.NewDevelopmentConfig()
		c.Level = zap.NewAtomicLevelAt(zap.InfoLevel)
		c.OutputPaths = []string{p}
		l, _ := c.Build()
		debugLogger = l
	}
}
var debugLogger *zap.Logger
