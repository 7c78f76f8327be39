package main

import (
	"errors"
	"strings"
	"testing"
)

func TestGeneratePostDeterministic(t *testing.T) {
	for id := uint64(0); id < 200; id++ {
		a, b := generatePost(7, id, 0), generatePost(7, id, 0)
		if a != b {
			t.Fatalf("post %d differs between calls: %+v vs %+v", id, a, b)
		}
		if a.ID != id || a.Author >= postsAuthors || a.Text == "" {
			t.Fatalf("post %d malformed: %+v", id, a)
		}
	}
	same := 0
	for id := uint64(0); id < 200; id++ {
		if generatePost(7, id, 0).Text == generatePost(8, id, 0).Text {
			same++
		}
	}
	if same > 2 {
		t.Errorf("%d of 200 posts identical under different seeds", same)
	}
}

func TestGeneratedSentimentMix(t *testing.T) {
	var tally [numSentiments]int
	for id := uint64(0); id < 5000; id++ {
		tally[scoreSentiment(generatePost(1, id, 0).Text)]++
	}
	// The generator leans positive; every verdict must occur in numbers.
	for s := sentiment(0); s < numSentiments; s++ {
		if tally[s] < 500 {
			t.Errorf("%v: only %d of 5000", s, tally[s])
		}
	}
	if tally[sentimentPositive] <= tally[sentimentNegative] {
		t.Errorf("positive %d <= negative %d", tally[sentimentPositive], tally[sentimentNegative])
	}
}

func TestPostRoundTrip(t *testing.T) {
	for id := uint64(0); id < 100; id++ {
		p := generatePost(3, id*7919, int(id)*10)
		data := appendPost(nil, p)
		got, err := decodePost(data)
		if err != nil {
			t.Fatalf("decode %q: %v", data, err)
		}
		if got != p {
			t.Fatalf("round trip: got %+v, want %+v", got, p)
		}
		if want := max(int(id)*10, len(data)-len(p.Meta)); len(data) != want || len(data) != encodedLen(p) {
			t.Fatalf("post %d: %d bytes, want %d (encodedLen %d)", id, len(data), want, encodedLen(p))
		}
	}
	if pk := (post{Author: 42}).partitionKey(); pk != "user-42" {
		t.Errorf("partition key %q", pk)
	}
}

func TestDecodePostRejects(t *testing.T) {
	for _, in := range []string{"", "hello", "fp1|", "fp1|1", "fp1|1|2", "fp1|1|2|text", "fp1|x|2|t", "fp1|1|y|t", "fp1|1|99999999999|t", "fp2|1|2|t"} {
		if _, err := decodePost([]byte(in)); !errors.Is(err, errPost) {
			t.Errorf("decodePost(%q) err = %v, want errPost", in, err)
		}
	}
}

func FuzzDecodePost(f *testing.F) {
	f.Add(appendPost(nil, generatePost(1, 1, 100)))
	f.Add([]byte("fp1|1|2||"))
	f.Add([]byte("fp1||||"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := decodePost(data)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to the same bytes, unless the numbers had
		// redundant forms (leading zeros, a plus sign).
		again, err := decodePost(appendPost(nil, p))
		if err != nil || again != p {
			t.Fatalf("re-decode of %+v: %+v, %v", p, again, err)
		}
		if !strings.HasPrefix(string(data), postMagic) {
			t.Fatalf("decoded %q without the prefix", data)
		}
	})
}

func TestScoreSentiment(t *testing.T) {
	tests := []struct {
		text string
		want sentiment
	}{
		{"", sentimentNeutral},
		{"the new app just launched", sentimentNeutral},
		{"I love it", sentimentPositive},
		{"Love it, GREAT launch!", sentimentPositive},
		{"it crashes and it is slow", sentimentNegative},
		{"not great", sentimentNegative},
		{"never slow", sentimentPositive},
		// A negator applies only to the word right after it: "not the best" leaves
		// "best" at +1, and "not awful" adds +1.
		{"not the best but not awful", sentimentPositive},
		{"love love hate", sentimentPositive},
		{"love hate", sentimentNeutral},
		{"not", sentimentNeutral},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			if got := scoreSentiment(tt.text); got != tt.want {
				t.Errorf("scoreSentiment(%q) = %v, want %v", tt.text, got, tt.want)
			}
		})
	}
	if sentimentPositive.String() != "positive" || sentiment(9).String() != "sentiment(9)" {
		t.Errorf("String: %q %q", sentimentPositive, sentiment(9))
	}
}

func BenchmarkGenerateAndEncodePost(b *testing.B) {
	b.ReportAllocs()
	var buf []byte
	for i := 0; i < b.N; i++ {
		p := generatePost(1, uint64(i), 600)
		buf = appendPost(buf[:0], p)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecodeAndScorePost(b *testing.B) {
	data := appendPost(nil, generatePost(1, 12345, 600))
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		p, err := decodePost(data)
		if err != nil {
			b.Fatal(err)
		}
		_ = scoreSentiment(p.Text)
	}
}
