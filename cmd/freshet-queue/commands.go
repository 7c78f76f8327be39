package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/freshet/freshet/internal/cli"
	"github.com/freshet/freshet/queue"
)

// Service bounds of the dead-letter operations.
const (
	maxVisibility = 12 * time.Hour
	receivePage   = 100
	releaseWait   = 30 * time.Second
)

func runDescribe(ctx context.Context, g *globalFlags, args []string, e env) error {
	var asJSON bool
	if err := parseCommand("describe", g, args, e, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print the DescribeQueue answer as JSON")
	}); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	k, err := client(ctx, g)
	if err != nil {
		return err
	}
	out, err := k.DescribeQueue(ctx, &kinesis.DescribeQueueInput{QueueARN: aws.String(g.queue)})
	if err != nil {
		return fmt.Errorf("describe %s: %w", g.queue, err)
	}
	d := out.QueueDescription
	if d == nil {
		return fmt.Errorf("describe %s: the answer has no QueueDescription", g.queue)
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(d)
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "queue\t%s\n", aws.ToString(d.QueueARN))
	fmt.Fprintf(w, "name\t%s\n", aws.ToString(d.QueueName))
	fmt.Fprintf(w, "status\t%s\n", d.QueueStatus)
	if d.QueueCreationTimestamp != nil {
		fmt.Fprintf(w, "created\t%s\n", d.QueueCreationTimestamp.UTC().Format(time.RFC3339))
	}
	for _, s := range d.StreamConfigurationList {
		from := "LATEST"
		if p := s.StartingPosition; p != nil {
			from = string(p.Type)
			if p.Timestamp != nil {
				from += " " + p.Timestamp.UTC().Format(time.RFC3339)
			}
		}
		fmt.Fprintf(w, "stream\t%s (from %s)\n", aws.ToString(s.StreamARN), from)
	}
	if a := d.QueueAttributes; a != nil {
		if a.VisibilityTimeoutSeconds != nil {
			fmt.Fprintf(w, "visibility timeout\t%v\n", time.Duration(*a.VisibilityTimeoutSeconds)*time.Second)
		}
		if dl := a.DeadLetterConfiguration; dl != nil {
			if dl.TargetType == types.TargetTypeBuiltIn {
				fmt.Fprintf(w, "dead letters\t%s, after %d receives\n", dl.TargetType, aws.ToInt32(dl.MaxReceiveCount))
			} else {
				fmt.Fprintf(w, "dead letters\t%s\n", dl.TargetType)
			}
		}
	}
	return w.Flush()
}

// dataFormat says how peek prints record data.
type dataFormat string

func (f *dataFormat) String() string { return string(*f) }

func (f *dataFormat) Set(s string) error {
	switch s {
	case "text", "base64", "hex", "none":
		*f = dataFormat(s)
		return nil
	}
	return fmt.Errorf("want text, base64, hex or none")
}

// format renders data, cut to limit bytes (0: no limit).
func (f dataFormat) format(data []byte, limit int) string {
	cut := ""
	if limit > 0 && len(data) > limit {
		data, cut = data[:limit], "..."
	}
	switch f {
	case "base64":
		return base64.StdEncoding.EncodeToString(data) + cut
	case "hex":
		return hex.EncodeToString(data) + cut
	case "none":
		return ""
	}
	if utf8.Valid(data) {
		return strconv.Quote(string(data)) + cut
	}
	return strconv.QuoteToASCII(string(data)) + cut
}

// jsonRecord is one dead-letter record as peek --json prints it.
type jsonRecord struct {
	ID               string    `json:"id"`
	PartitionKey     *string   `json:"partitionKey,omitempty"`
	ReceiveCount     int       `json:"receiveCount"`
	ArrivalTime      time.Time `json:"arrivalTime"`
	FirstReceiveTime time.Time `json:"firstReceiveTime"`
	Size             int       `json:"size"`
	Data             []byte    `json:"data"`
}

func runPeek(ctx context.Context, g *globalFlags, args []string, e env) error {
	most, limit, asJSON, data := 10, 256, false, dataFormat("text")
	if err := parseCommand("peek", g, args, e, func(fs *flag.FlagSet) {
		fs.IntVar(&most, "max", most, "most dead-letter records to print")
		fs.BoolVar(&asJSON, "json", false, "print one JSON object per record, data in base64 and whole")
		fs.Var(&data, "data", "how to print data: text (quoted), base64, hex or none")
		fs.IntVar(&limit, "data-limit", limit, "bytes of data printed per record (0: all)")
	}); err != nil {
		return err
	}
	if most < 1 {
		return cli.Usagef("peek: --max %d: want at least 1", most)
	}
	if limit < 0 {
		return cli.Usagef("peek: --data-limit %d: want 0 or more", limit)
	}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	dl, err := deadLetters(ctx, g)
	if err != nil {
		return err
	}
	recs, err := dl.Receive(ctx, most, hold(g))
	defer release(ctx, dl, recs, e)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		for _, r := range recs {
			j := jsonRecord{ID: r.ID, ReceiveCount: r.ReceiveCount, ArrivalTime: r.ArrivalTime, FirstReceiveTime: r.FirstReceiveTime, Size: len(r.Data), Data: r.Data}
			if r.HasPartitionKey() {
				j.PartitionKey = aws.String(r.PartitionKey)
			}
			if err := enc.Encode(j); err != nil {
				return err
			}
		}
		return nil
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "RECORD ID\tRECEIVES\tPARTITION KEY\tARRIVED\tSIZE\tDATA")
	for _, r := range recs {
		key := strconv.Quote(r.PartitionKey)
		if !r.HasPartitionKey() {
			key = "(none)"
		}
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%d\t%s\n", r.ID, r.ReceiveCount, key, r.ArrivalTime.UTC().Format(time.RFC3339), len(r.Data), data.format(r.Data, limit))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "%d dead-letter record(s) shown and made visible again\n", len(recs))
	return nil
}

// action is one of the acting commands.
type action struct {
	name string
	verb string // past tense, for the report
	act  func(ctx context.Context, dl *queue.DeadLetters, recs []*queue.Record, vis time.Duration) ([]*queue.EntryError, error)
	// confirm asks before acting (unless --yes); visibility takes --for.
	confirm, visibility bool
}

var (
	actRestore = action{name: "restore", verb: "restored", act: func(ctx context.Context, dl *queue.DeadLetters, recs []*queue.Record, _ time.Duration) ([]*queue.EntryError, error) {
		return dl.Restore(ctx, recs)
	}}
	actAcknowledge = action{name: "acknowledge", verb: "acknowledged", confirm: true, act: func(ctx context.Context, dl *queue.DeadLetters, recs []*queue.Record, _ time.Duration) ([]*queue.EntryError, error) {
		return dl.Acknowledge(ctx, recs)
	}}
	actVisibility = action{name: "visibility", verb: "hidden", visibility: true, act: func(ctx context.Context, dl *queue.DeadLetters, recs []*queue.Record, vis time.Duration) ([]*queue.EntryError, error) {
		return dl.SetVisibility(ctx, recs, vis)
	}}
)

// idList is a repeatable, comma-separated --id flag.
type idList []string

func (l *idList) String() string { return strings.Join(*l, ",") }

func (l *idList) Set(s string) error {
	for _, id := range strings.Split(s, ",") {
		if id = strings.TrimSpace(id); id == "" {
			return errors.New("empty record ID")
		}
		*l = append(*l, id)
	}
	return nil
}

func runAct(a action) func(context.Context, *globalFlags, []string, env) error {
	return func(ctx context.Context, g *globalFlags, args []string, e env) error {
		var (
			ids      idList
			all, yes bool
			most     = 1000
			vis      = time.Duration(-1)
		)
		if err := parseCommand(a.name, g, args, e, func(fs *flag.FlagSet) {
			fs.Var(&ids, "id", "record ID to act on (repeatable, or comma-separated)")
			fs.BoolVar(&all, "all", false, "act on every visible dead-letter record (up to --max)")
			fs.IntVar(&most, "max", most, "most dead-letter records to receive")
			if a.confirm {
				fs.BoolVar(&yes, "yes", false, "do not ask for confirmation")
			}
			if a.visibility {
				fs.DurationVar(&vis, "for", vis, "how long the records stay hidden from other dead-letter receivers: whole seconds, 0 to 12h (required)")
			}
		}); err != nil {
			return err
		}
		if all == (len(ids) > 0) {
			return cli.Usagef("%s: give --all or at least one --id", a.name)
		}
		if most < 1 {
			return cli.Usagef("%s: --max %d: want at least 1", a.name, most)
		}
		if a.visibility && (vis < 0 || vis > maxVisibility || vis%time.Second != 0) {
			if vis == -1 {
				return cli.Usagef("visibility: --for is required")
			}
			return cli.Usagef("visibility: --for %v: want whole seconds from 0 to 12h", vis)
		}
		ctx, cancel := context.WithTimeout(ctx, g.timeout)
		defer cancel()
		dl, err := deadLetters(ctx, g)
		if err != nil {
			return err
		}
		chosen, others, missing, err := receiveChosen(ctx, dl, hold(g), most, ids)
		defer func() { release(ctx, dl, others, e) }()
		if err != nil {
			release(ctx, dl, chosen, e)
			return err
		}
		if len(chosen) == 0 {
			fmt.Fprintf(e.stdout, "no dead-letter records %s\n", a.verb)
			return notFound(missing, e)
		}
		if a.confirm && !yes {
			ok, err := confirm(e, fmt.Sprintf("%s (discard) %d dead-letter record(s) of %s? [y/N] ", a.name, len(chosen), g.queue))
			if err != nil || !ok {
				release(ctx, dl, chosen, e)
				if err != nil {
					return err
				}
				return errors.New("not confirmed: nothing changed (use --yes to skip the question)")
			}
		}
		refused, err := a.act(ctx, dl, chosen, vis)
		if err != nil {
			release(ctx, dl, chosen, e)
			return err
		}
		bad := make(map[*queue.Record]bool, len(refused))
		for _, r := range refused {
			bad[r.Record] = true
			fmt.Fprintf(e.stderr, "refused %s: %s: %s\n", r.Record.ID, r.Code, r.Message)
		}
		n := 0
		for _, r := range chosen {
			if !bad[r] {
				fmt.Fprintf(e.stdout, "%s %s\n", a.verb, r.ID)
				n++
			}
		}
		fmt.Fprintf(e.stdout, "%d dead-letter record(s) %s\n", n, a.verb)
		if err := notFound(missing, e); err != nil || len(refused) == 0 {
			return err
		}
		return fmt.Errorf("%d dead-letter record(s) refused", len(refused))
	}
}

// receiveChosen receives up to most dead-letter records, hidden for hold: all of them
// when ids is empty, else those with the given IDs (stopping once all are found). The
// rest come back in others, their data dropped, to be released.
func receiveChosen(ctx context.Context, dl *queue.DeadLetters, hold time.Duration, most int, ids []string) (chosen, others []*queue.Record, missing []string, err error) {
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	received := 0
	for received < most && (len(ids) == 0 || len(want) > 0) {
		n := min(receivePage, most-received)
		page, err := dl.Receive(ctx, n, hold)
		received += len(page)
		for _, r := range page {
			switch {
			case len(ids) == 0:
				chosen = append(chosen, r)
			case want[r.ID]:
				delete(want, r.ID)
				chosen = append(chosen, r)
			default:
				r.Data = nil
				others = append(others, r)
			}
		}
		if err != nil {
			return chosen, others, nil, err
		}
		if len(page) < n {
			break
		}
	}
	for _, id := range ids {
		if want[id] {
			missing = append(missing, id)
		}
	}
	return chosen, others, missing, nil
}

func notFound(missing []string, e env) error {
	for _, id := range missing {
		fmt.Fprintf(e.stderr, "not found: %s (not a visible dead-letter record of this queue within --max)\n", id)
	}
	if len(missing) > 0 {
		return fmt.Errorf("%d record ID(s) not found", len(missing))
	}
	return nil
}

func confirm(e env, question string) (bool, error) {
	fmt.Fprint(e.stdout, question)
	line, err := bufio.NewReader(e.stdin).ReadString('\n')
	if err != nil && line == "" {
		return false, fmt.Errorf("read confirmation: %w", err)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}

func deadLetters(ctx context.Context, g *globalFlags) (*queue.DeadLetters, error) {
	k, err := client(ctx, g)
	if err != nil {
		return nil, err
	}
	return queue.NewDeadLetters(k, g.queue)
}

// hold is the visibility of the records the command receives: the command's timeout
// in whole seconds (at least one, at most 12 h), so a record is received once per run
// and comes back on its own if the command dies.
func hold(g *globalFlags) time.Duration {
	d := (g.timeout + time.Second - 1).Truncate(time.Second)
	return min(max(d, time.Second), maxVisibility)
}

// release makes recs visible to dead-letter receivers again, also after ctx ended.
func release(ctx context.Context, dl *queue.DeadLetters, recs []*queue.Record, e env) {
	if len(recs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseWait)
	defer cancel()
	refused, err := dl.Release(ctx, recs)
	if err != nil {
		fmt.Fprintf(e.stderr, "could not make %d dead-letter record(s) visible again (they will be after --timeout): %v\n", len(recs), err)
		return
	}
	for _, r := range refused {
		fmt.Fprintf(e.stderr, "could not make %s visible again: %s: %s\n", r.Record.ID, r.Code, r.Message)
	}
}
