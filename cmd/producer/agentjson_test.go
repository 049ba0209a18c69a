package main

import (
	"bufio"
	"errors"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/shardwatch/shardwatch/internal/testenv"
	"github.com/shardwatch/shardwatch/pkg/records"
)

func TestAgentJSONShape(t *testing.T) {
	got, err := agentJSON([]byte(`536365,85123A,"WHITE HANGING HEART T-LIGHT HOLDER, LARGE",6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom`))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"InvoiceNo":"536365","StockCode":"85123A","Description":"WHITE HANGING HEART T-LIGHT HOLDER, LARGE","Quantity":"6","InvoiceDate":"2010-12-01 08:26:00","UnitPrice":"2.55","Customer":"17850.0","Country":"United Kingdom"}`
	if string(got) != want {
		t.Errorf("agentJSON:\n got %s\nwant %s", got, want)
	}
	if _, err := agentJSON([]byte(`536365,85123A`)); err == nil {
		t.Error("a short line converted")
	}
}

// Every December order line, sent as the Kinesis Agent would, decodes to
// exactly the record of its CSV line, with format orders-json and auto.
func TestAgentJSONDecodesLikeCSV(t *testing.T) {
	fh, err := os.Open(testenv.SharedData(t, "orders/online-retail-2010-12.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	csvDec, _ := records.NewDecoder(records.FormatOrdersCSV)
	jsonDec, _ := records.NewDecoder(records.FormatOrdersJSON)
	autoDec, _ := records.NewDecoder(records.FormatAuto)
	sc := bufio.NewScanner(fh)
	n := 0
	for sc.Scan() {
		line := sc.Bytes()
		var want records.Record
		if err := csvDec.Decode(line, &want); errors.Is(err, records.ErrHeader) {
			continue
		} else if err != nil {
			t.Fatalf("csv line %q: %v", line, err)
		}
		js, err := agentJSON(line)
		if err != nil {
			t.Fatalf("agentJSON(%q): %v", line, err)
		}
		for _, d := range []records.Decoder{jsonDec, autoDec} {
			var got records.Record
			if err := d.Decode(js, &got); err != nil {
				t.Fatalf("%s: %v", js, err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("%s decodes differently from its CSV line (-csv +json):\n%s", js, diff)
			}
		}
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 42481 {
		t.Errorf("%d order lines, want 42481", n)
	}
}
