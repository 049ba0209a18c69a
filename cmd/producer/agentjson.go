package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strings"
)

// formatAgentJSON is the replay mode that sends orders CSV lines the way
// a Kinesis Agent with a CSVTOJSON data processing option and custom field
// names writes them: one JSON object per line, every value a string as
// written in the CSV. It is what the order-flood systems shardwatch
// replaces were fed with.
const formatAgentJSON = "orders-agent-json"

// agentOrder is the agent's record: customFieldNames in CSV column order.
type agentOrder struct {
	InvoiceNo   string
	StockCode   string
	Description string
	Quantity    string
	InvoiceDate string
	UnitPrice   string
	Customer    string
	Country     string
}

// agentJSON converts one orders CSV line (InvoiceNo, StockCode,
// Description, Quantity, InvoiceDate, UnitPrice, CustomerID, Country) to
// the agent's JSON.
func agentJSON(line []byte) ([]byte, error) {
	r := csv.NewReader(strings.NewReader(string(line)))
	r.FieldsPerRecord = 8
	fields, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", formatAgentJSON, err)
	}
	return json.Marshal(agentOrder{
		InvoiceNo: fields[0], StockCode: fields[1], Description: fields[2], Quantity: fields[3],
		InvoiceDate: fields[4], UnitPrice: fields[5], Customer: fields[6], Country: fields[7],
	})
}
