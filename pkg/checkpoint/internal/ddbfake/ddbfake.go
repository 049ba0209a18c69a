// Package ddbfake is a small in-memory DynamoDB for the checkpoint
// package's unit tests: the table calls the store (and vmware-go-kcl-v2's
// checkpointer) make, with condition expressions (=, <>, AND, OR, NOT,
// parentheses, attribute_exists, attribute_not_exists), SET/REMOVE update
// expressions of plain values, Scan pagination and fault injection. It is
// a test double for logic, not a DynamoDB emulator; the conformance suite
// also runs against DynamoDB Local.
package ddbfake

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

type item = map[string]types.AttributeValue

// Fault makes one call fail. With Applied the call takes effect first, as
// when a response is lost after the server committed the write.
type Fault struct {
	Op      string // "UpdateItem", "Scan", ...
	Err     error
	Applied bool
}

// DB is the fake. The zero value is not usable; call New.
type DB struct {
	// PageSize is the Scan page size (small, to exercise pagination).
	PageSize int

	mu     sync.Mutex
	tables map[string]*table
	calls  map[string]int
	faults []Fault
}

type table struct {
	key   string
	items map[string]item
}

// New returns an empty fake with a Scan page size of 2.
func New() *DB { return &DB{PageSize: 2, tables: map[string]*table{}, calls: map[string]int{}} }

// Inject queues a fault for the next call of f.Op.
func (db *DB) Inject(f Fault) {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.faults = append(db.faults, f)
}

// Calls returns the number of calls per operation so far.
func (db *DB) Calls() map[string]int {
	db.mu.Lock()
	defer db.mu.Unlock()
	out := make(map[string]int, len(db.calls))
	for k, v := range db.calls {
		out[k] = v
	}
	return out
}

// Item returns a copy of an item, or nil.
func (db *DB) Item(tableName, key string) map[string]types.AttributeValue {
	db.mu.Lock()
	defer db.mu.Unlock()
	t, ok := db.tables[tableName]
	if !ok {
		return nil
	}
	if it, ok := t.items[key]; ok {
		return clone(it)
	}
	return nil
}

// begin counts the call and pops a matching fault.
func (db *DB) begin(ctx context.Context, op string) (*Fault, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	db.calls[op]++
	for i, f := range db.faults {
		if f.Op == op {
			db.faults = slices.Delete(db.faults, i, i+1)
			if !f.Applied {
				return nil, f.Err
			}
			return &f, nil
		}
	}
	return nil, nil
}

func (db *DB) table(name *string) (*table, error) {
	t, ok := db.tables[aws.ToString(name)]
	if !ok {
		return nil, &types.ResourceNotFoundException{Message: aws.String("Cannot do operations on a non-existent table")}
	}
	return t, nil
}

func keyOf(t *table, key item) (string, error) {
	v, ok := key[t.key].(*types.AttributeValueMemberS)
	if !ok || len(key) != 1 {
		return "", fmt.Errorf("ddbfake: key must be {%s: S}", t.key)
	}
	return v.Value, nil
}

func clone(it item) item {
	if it == nil {
		return nil
	}
	out := make(item, len(it))
	for k, v := range it {
		out[k] = v
	}
	return out
}

func ccf(old item, rv types.ReturnValuesOnConditionCheckFailure) error {
	e := &types.ConditionalCheckFailedException{Message: aws.String("The conditional request failed")}
	if rv == types.ReturnValuesOnConditionCheckFailureAllOld {
		e.Item = clone(old)
	}
	return e
}

// CreateTable creates a hash-key table (status ACTIVE at once).
func (db *DB) CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if _, err := db.begin(ctx, "CreateTable"); err != nil {
		return nil, err
	}
	name := aws.ToString(in.TableName)
	if _, ok := db.tables[name]; ok {
		return nil, &types.ResourceInUseException{Message: aws.String("Cannot create preexisting table")}
	}
	if len(in.KeySchema) != 1 {
		return nil, fmt.Errorf("ddbfake: only a single hash key is supported")
	}
	db.tables[name] = &table{key: aws.ToString(in.KeySchema[0].AttributeName), items: map[string]item{}}
	return &dynamodb.CreateTableOutput{TableDescription: db.describeLocked(name, in)}, nil
}

func (db *DB) describeLocked(name string, in *dynamodb.CreateTableInput) *types.TableDescription {
	t := db.tables[name]
	return &types.TableDescription{
		TableName:            aws.String(name),
		TableStatus:          types.TableStatusActive,
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(t.key), KeyType: types.KeyTypeHash}},
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(t.key), AttributeType: types.ScalarAttributeTypeS}},
	}
}

// DescribeTable describes a table.
func (db *DB) DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if _, err := db.begin(ctx, "DescribeTable"); err != nil {
		return nil, err
	}
	if _, err := db.table(in.TableName); err != nil {
		return nil, err
	}
	return &dynamodb.DescribeTableOutput{Table: db.describeLocked(aws.ToString(in.TableName), nil)}, nil
}

// GetItem reads one item.
func (db *DB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if _, err := db.begin(ctx, "GetItem"); err != nil {
		return nil, err
	}
	t, err := db.table(in.TableName)
	if err != nil {
		return nil, err
	}
	k, err := keyOf(t, in.Key)
	if err != nil {
		return nil, err
	}
	return &dynamodb.GetItemOutput{Item: clone(t.items[k])}, nil
}

// Scan returns items in key order, PageSize at a time.
func (db *DB) Scan(ctx context.Context, in *dynamodb.ScanInput, _ ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	f, err := db.begin(ctx, "Scan")
	if err != nil {
		return nil, err
	}
	t, err := db.table(in.TableName)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(t.items))
	for k := range t.items {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if in.ExclusiveStartKey != nil {
		after, err := keyOf(t, in.ExclusiveStartKey)
		if err != nil {
			return nil, err
		}
		i := sort.SearchStrings(keys, after)
		if i < len(keys) && keys[i] == after {
			i++
		}
		keys = keys[i:]
	}
	out := &dynamodb.ScanOutput{}
	size := db.PageSize
	if size <= 0 {
		size = len(keys) + 1
	}
	for i, k := range keys {
		if i == size {
			out.LastEvaluatedKey = item{t.key: &types.AttributeValueMemberS{Value: keys[i-1]}}
			break
		}
		out.Items = append(out.Items, clone(t.items[k]))
	}
	out.Count = int32(len(out.Items))
	if f != nil {
		return nil, f.Err
	}
	return out, nil
}

// PutItem replaces an item, conditionally.
func (db *DB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	f, err := db.begin(ctx, "PutItem")
	if err != nil {
		return nil, err
	}
	t, err := db.table(in.TableName)
	if err != nil {
		return nil, err
	}
	k, err := keyOf(t, item{t.key: in.Item[t.key]})
	if err != nil {
		return nil, err
	}
	old := t.items[k]
	ok, err := evalCondition(aws.ToString(in.ConditionExpression), in.ExpressionAttributeNames, in.ExpressionAttributeValues, old)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ccf(old, in.ReturnValuesOnConditionCheckFailure)
	}
	t.items[k] = clone(in.Item)
	if f != nil {
		return nil, f.Err
	}
	return &dynamodb.PutItemOutput{}, nil
}

// UpdateItem applies SET/REMOVE, conditionally, creating the item if absent.
func (db *DB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	f, err := db.begin(ctx, "UpdateItem")
	if err != nil {
		return nil, err
	}
	t, err := db.table(in.TableName)
	if err != nil {
		return nil, err
	}
	k, err := keyOf(t, in.Key)
	if err != nil {
		return nil, err
	}
	old := t.items[k]
	ok, err := evalCondition(aws.ToString(in.ConditionExpression), in.ExpressionAttributeNames, in.ExpressionAttributeValues, old)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ccf(old, in.ReturnValuesOnConditionCheckFailure)
	}
	next := clone(old)
	if next == nil {
		next = clone(in.Key)
	}
	if err := applyUpdate(aws.ToString(in.UpdateExpression), in.ExpressionAttributeNames, in.ExpressionAttributeValues, next); err != nil {
		return nil, err
	}
	t.items[k] = next
	if f != nil {
		return nil, f.Err
	}
	out := &dynamodb.UpdateItemOutput{}
	switch in.ReturnValues {
	case types.ReturnValueAllNew:
		out.Attributes = clone(next)
	case types.ReturnValueAllOld:
		out.Attributes = clone(old)
	}
	return out, nil
}

// DeleteItem deletes an item, conditionally.
func (db *DB) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	f, err := db.begin(ctx, "DeleteItem")
	if err != nil {
		return nil, err
	}
	t, err := db.table(in.TableName)
	if err != nil {
		return nil, err
	}
	k, err := keyOf(t, in.Key)
	if err != nil {
		return nil, err
	}
	old := t.items[k]
	ok, err := evalCondition(aws.ToString(in.ConditionExpression), in.ExpressionAttributeNames, in.ExpressionAttributeValues, old)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ccf(old, in.ReturnValuesOnConditionCheckFailure)
	}
	delete(t.items, k)
	if f != nil {
		return nil, f.Err
	}
	return &dynamodb.DeleteItemOutput{}, nil
}

// DeleteTable drops a table.
func (db *DB) DeleteTable(ctx context.Context, in *dynamodb.DeleteTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.DeleteTableOutput, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if _, err := db.begin(ctx, "DeleteTable"); err != nil {
		return nil, err
	}
	if _, err := db.table(in.TableName); err != nil {
		return nil, err
	}
	delete(db.tables, aws.ToString(in.TableName))
	return &dynamodb.DeleteTableOutput{}, nil
}

// ---- expressions ----

type lexer struct {
	toks []string
	pos  int
}

func lex(s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			i++
		case c == '(' || c == ')' || c == ',' || c == '=' || c == '+':
			toks = append(toks, string(c))
			i++
		case c == '<' && i+1 < len(s) && s[i+1] == '>':
			toks = append(toks, "<>")
			i += 2
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n(),=<+", rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks
}

func (l *lexer) peek() string {
	if l.pos < len(l.toks) {
		return l.toks[l.pos]
	}
	return ""
}

func (l *lexer) next() string { t := l.peek(); l.pos++; return t }

func (l *lexer) expect(t string) error {
	if got := l.next(); got != t {
		return fmt.Errorf("ddbfake: expression: want %q, got %q", t, got)
	}
	return nil
}

type env struct {
	names  map[string]string
	values map[string]types.AttributeValue
	it     item
}

func (e env) attr(tok string) string {
	if strings.HasPrefix(tok, "#") {
		return e.names[tok]
	}
	return tok
}

// operand resolves a :value or an attribute path to its value (nil if absent).
func (e env) operand(tok string) (types.AttributeValue, error) {
	if strings.HasPrefix(tok, ":") {
		v, ok := e.values[tok]
		if !ok {
			return nil, fmt.Errorf("ddbfake: undefined value %s", tok)
		}
		return v, nil
	}
	return e.it[e.attr(tok)], nil
}

func evalCondition(cond string, names map[string]string, values map[string]types.AttributeValue, it item) (bool, error) {
	if cond == "" {
		return true, nil
	}
	l := &lexer{toks: lex(cond)}
	ok, err := parseOr(l, env{names, values, it})
	if err != nil {
		return false, err
	}
	if l.peek() != "" {
		return false, fmt.Errorf("ddbfake: trailing %q in condition", l.peek())
	}
	return ok, nil
}

func parseOr(l *lexer, e env) (bool, error) {
	v, err := parseAnd(l, e)
	for err == nil && strings.EqualFold(l.peek(), "OR") {
		l.next()
		var w bool
		w, err = parseAnd(l, e)
		v = v || w
	}
	return v, err
}

func parseAnd(l *lexer, e env) (bool, error) {
	v, err := parseNot(l, e)
	for err == nil && strings.EqualFold(l.peek(), "AND") {
		l.next()
		var w bool
		w, err = parseNot(l, e)
		v = v && w
	}
	return v, err
}

func parseNot(l *lexer, e env) (bool, error) {
	if strings.EqualFold(l.peek(), "NOT") {
		l.next()
		v, err := parseNot(l, e)
		return !v, err
	}
	return parsePrimary(l, e)
}

func parsePrimary(l *lexer, e env) (bool, error) {
	tok := l.next()
	switch {
	case tok == "(":
		v, err := parseOr(l, e)
		if err != nil {
			return false, err
		}
		return v, l.expect(")")
	case tok == "attribute_exists" || tok == "attribute_not_exists":
		if err := l.expect("("); err != nil {
			return false, err
		}
		_, present := e.it[e.attr(l.next())]
		if err := l.expect(")"); err != nil {
			return false, err
		}
		return present == (tok == "attribute_exists"), nil
	}
	a, err := e.operand(tok)
	if err != nil {
		return false, err
	}
	op := l.next()
	b, err := e.operand(l.next())
	if err != nil {
		return false, err
	}
	switch op {
	case "=":
		return a != nil && b != nil && equal(a, b), nil
	case "<>":
		return a != nil && b != nil && !equal(a, b), nil
	}
	return false, fmt.Errorf("ddbfake: unsupported operator %q", op)
}

func equal(a, b types.AttributeValue) bool {
	switch x := a.(type) {
	case *types.AttributeValueMemberS:
		y, ok := b.(*types.AttributeValueMemberS)
		return ok && x.Value == y.Value
	case *types.AttributeValueMemberN:
		y, ok := b.(*types.AttributeValueMemberN)
		return ok && x.Value == y.Value
	case *types.AttributeValueMemberBOOL:
		y, ok := b.(*types.AttributeValueMemberBOOL)
		return ok && x.Value == y.Value
	}
	return false
}

func applyUpdate(upd string, names map[string]string, values map[string]types.AttributeValue, it item) error {
	l := &lexer{toks: lex(upd)}
	e := env{names, values, it}
	for l.peek() != "" {
		switch clause := strings.ToUpper(l.next()); clause {
		case "SET":
			for {
				name := e.attr(l.next())
				if err := l.expect("="); err != nil {
					return err
				}
				v, err := e.operand(l.next())
				if err != nil {
					return err
				}
				if l.peek() == "+" {
					return fmt.Errorf("ddbfake: arithmetic in SET is not supported")
				}
				it[name] = v
				if l.peek() != "," {
					break
				}
				l.next()
			}
		case "REMOVE":
			for {
				delete(it, e.attr(l.next()))
				if l.peek() != "," {
					break
				}
				l.next()
			}
		default:
			return fmt.Errorf("ddbfake: unsupported update clause %q", clause)
		}
	}
	return nil
}
