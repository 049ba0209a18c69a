package deploycheck

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Template is a decoded CloudFormation template. Short-form intrinsic tags
// (!Ref, !Sub, ...) are rewritten to their long form ({"Ref": ...},
// {"Fn::Sub": ...}) so everything downstream sees one shape.
type Template struct {
	Parameters map[string]Parameter
	Conditions map[string]any
	Resources  map[string]Resource
	Outputs    map[string]any
	Rules      map[string]any
	Mappings   map[string]any
}

// Parameter is one entry of the Parameters section.
type Parameter struct {
	Type          string
	Default       any
	AllowedValues []any
	HasDefault    bool
}

// Resource is one entry of the Resources section.
type Resource struct {
	Type       string
	Condition  string
	Properties map[string]any
}

// LoadTemplate reads and decodes a CloudFormation YAML template.
func LoadTemplate(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load template: %w", err)
	}
	t, err := ParseTemplate(data)
	if err != nil {
		return nil, fmt.Errorf("load template %s: %w", path, err)
	}
	return t, nil
}

// ParseTemplate decodes a CloudFormation YAML template.
func ParseTemplate(data []byte) (*Template, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) != 1 {
		return nil, errors.New("template is empty")
	}
	root, err := fromNode(doc.Content[0])
	if err != nil {
		return nil, err
	}
	top, ok := root.(map[string]any)
	if !ok {
		return nil, errors.New("template is not a mapping")
	}
	t := &Template{
		Parameters: map[string]Parameter{},
		Conditions: asMap(top["Conditions"]),
		Resources:  map[string]Resource{},
		Outputs:    asMap(top["Outputs"]),
		Rules:      asMap(top["Rules"]),
		Mappings:   asMap(top["Mappings"]),
	}
	for name, v := range asMap(top["Parameters"]) {
		m := asMap(v)
		p := Parameter{Type: str(m["Type"]), AllowedValues: asList(m["AllowedValues"])}
		p.Default, p.HasDefault = m["Default"]
		t.Parameters[name] = p
	}
	for name, v := range asMap(top["Resources"]) {
		m := asMap(v)
		r := Resource{Type: str(m["Type"]), Condition: str(m["Condition"]), Properties: asMap(m["Properties"])}
		if r.Type == "" {
			return nil, fmt.Errorf("resource %s has no Type", name)
		}
		t.Resources[name] = r
	}
	return t, nil
}

// ResourcesOfType lists the logical IDs of resources of type typ, sorted.
func (t *Template) ResourcesOfType(typ string) []string {
	var ids []string
	for id, r := range t.Resources {
		if r.Type == typ {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// shortTags maps YAML short-form tags to the long-form key.
var shortTags = map[string]string{
	"!Ref": "Ref", "!Condition": "Condition",
	"!Base64": "Fn::Base64", "!Cidr": "Fn::Cidr", "!FindInMap": "Fn::FindInMap",
	"!GetAtt": "Fn::GetAtt", "!GetAZs": "Fn::GetAZs", "!ImportValue": "Fn::ImportValue",
	"!Join": "Fn::Join", "!Select": "Fn::Select", "!Split": "Fn::Split", "!Sub": "Fn::Sub",
	"!Transform": "Fn::Transform", "!And": "Fn::And", "!Equals": "Fn::Equals",
	"!If": "Fn::If", "!Not": "Fn::Not", "!Or": "Fn::Or", "!Length": "Fn::Length",
	"!ToJsonString": "Fn::ToJsonString",
}

func fromNode(n *yaml.Node) (any, error) {
	v, err := plainNode(n)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(n.Tag, "!") || strings.HasPrefix(n.Tag, "!!") {
		return v, nil
	}
	key, ok := shortTags[n.Tag]
	if !ok {
		return nil, fmt.Errorf("line %d: unknown tag %s", n.Line, n.Tag)
	}
	if key == "Fn::GetAtt" {
		// !GetAtt Res.Attr is the dotted short form of [Res, Attr].
		if s, ok := v.(string); ok {
			res, attr, found := strings.Cut(s, ".")
			if !found {
				return nil, fmt.Errorf("line %d: !GetAtt %q: want Resource.Attribute", n.Line, s)
			}
			v = []any{res, attr}
		}
	}
	return map[string]any{key: v}, nil
}

func plainNode(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: non-scalar mapping key", k.Line)
			}
			if _, dup := m[k.Value]; dup {
				return nil, fmt.Errorf("line %d: duplicate key %q", k.Line, k.Value)
			}
			v, err := fromNode(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[k.Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := fromNode(c)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		return l, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!int":
			return strconv.ParseInt(n.Value, 0, 64)
		case "!!float":
			return strconv.ParseFloat(n.Value, 64)
		case "!!bool":
			return n.Value == "true", nil
		case "!!null":
			return nil, nil
		default:
			return n.Value, nil
		}
	case yaml.AliasNode:
		return nil, fmt.Errorf("line %d: YAML aliases are not supported by CloudFormation", n.Line)
	default:
		return nil, fmt.Errorf("line %d: unexpected YAML node kind %d", n.Line, n.Kind)
	}
}

// Wild stands for a value only known at deploy time (a generated name, a
// resource ID). Evaluated strings may contain it; Matches treats it as
// "one or more characters".
const Wild = "\x00"

// noValue is AWS::NoValue: the property or list element disappears.
type noValue struct{}

// Evaluator resolves intrinsic functions for one set of parameter values,
// the way CloudFormation would at deploy time, as far as that is knowable
// offline: names this stack chooses are exact, generated names are Wild.
type Evaluator struct {
	T      *Template
	Params map[string]any    // parameter values (defaults applied); list parameters as []any
	Pseudo map[string]string // AWS::Region, AWS::AccountId, AWS::Partition, ...
	conds  map[string]bool
}

// NewEvaluator applies overrides over the parameter defaults and checks
// that every parameter then has a value.
func NewEvaluator(t *Template, overrides map[string]string, pseudo map[string]string) (*Evaluator, error) {
	e := &Evaluator{T: t, Params: map[string]any{}, Pseudo: maps.Clone(pseudo), conds: map[string]bool{}}
	for name, p := range t.Parameters {
		raw, ok := overrides[name]
		var v any
		switch {
		case ok:
			v = raw
		case p.HasDefault:
			v = scalarString(p.Default)
		default:
			return nil, fmt.Errorf("parameter %s has no default and no override", name)
		}
		if strings.HasPrefix(p.Type, "List<") || p.Type == "CommaDelimitedList" {
			var l []any
			for s := range strings.SplitSeq(v.(string), ",") {
				l = append(l, strings.TrimSpace(s))
			}
			v = l
		} else if len(p.AllowedValues) > 0 {
			allowed := false
			for _, a := range p.AllowedValues {
				allowed = allowed || scalarString(a) == v
			}
			if !allowed {
				return nil, fmt.Errorf("parameter %s: %q is not an allowed value", name, v)
			}
		}
		e.Params[name] = v
	}
	for name := range overrides {
		if _, ok := t.Parameters[name]; !ok {
			return nil, fmt.Errorf("override for unknown parameter %s", name)
		}
	}
	names := slices.Sorted(maps.Keys(t.Conditions))
	for _, name := range names {
		if _, err := e.Condition(name); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// Condition evaluates a named condition.
func (e *Evaluator) Condition(name string) (bool, error) {
	if v, ok := e.conds[name]; ok {
		return v, nil
	}
	def, ok := e.T.Conditions[name]
	if !ok {
		return false, fmt.Errorf("unknown condition %s", name)
	}
	v, err := e.boolean(def)
	if err != nil {
		return false, fmt.Errorf("condition %s: %w", name, err)
	}
	e.conds[name] = v
	return v, nil
}

// Exists reports whether the resource is created for these parameters.
func (e *Evaluator) Exists(id string) bool {
	r, ok := e.T.Resources[id]
	if !ok {
		return false
	}
	if r.Condition == "" {
		return true
	}
	v, err := e.Condition(r.Condition)
	return err == nil && v
}

// Properties returns the evaluated properties of a resource.
func (e *Evaluator) Properties(id string) (map[string]any, error) {
	r, ok := e.T.Resources[id]
	if !ok {
		return nil, fmt.Errorf("no resource %s", id)
	}
	v, err := e.Eval(r.Properties)
	if err != nil {
		return nil, fmt.Errorf("resource %s: %w", id, err)
	}
	m, _ := v.(map[string]any)
	return m, nil
}

func (e *Evaluator) boolean(v any) (bool, error) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return false, fmt.Errorf("not a condition function: %v", v)
	}
	for fn, arg := range m {
		args := asList(arg)
		switch fn {
		case "Condition":
			return e.Condition(str(arg))
		case "Fn::Equals":
			if len(args) != 2 {
				return false, errors.New("Fn::Equals wants 2 arguments")
			}
			a, err := e.Eval(args[0])
			if err != nil {
				return false, err
			}
			b, err := e.Eval(args[1])
			if err != nil {
				return false, err
			}
			if strings.Contains(scalarString(a), Wild) || strings.Contains(scalarString(b), Wild) {
				return false, fmt.Errorf("Fn::Equals on a deploy-time value: %v", args)
			}
			return scalarString(a) == scalarString(b), nil
		case "Fn::Not":
			if len(args) != 1 {
				return false, errors.New("Fn::Not wants 1 argument")
			}
			b, err := e.boolean(args[0])
			return !b, err
		case "Fn::And", "Fn::Or":
			and := fn == "Fn::And"
			res := and
			for _, a := range args {
				b, err := e.boolean(a)
				if err != nil {
					return false, err
				}
				if and {
					res = res && b
				} else {
					res = res || b
				}
			}
			return res, nil
		default:
			return false, fmt.Errorf("%s is not a condition function", fn)
		}
	}
	return false, nil
}

// Eval resolves every intrinsic function inside v.
func (e *Evaluator) Eval(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			for k, arg := range x {
				if k == "Ref" || strings.HasPrefix(k, "Fn::") {
					return e.intrinsic(k, arg)
				}
			}
		}
		out := make(map[string]any, len(x))
		for k, val := range x {
			r, err := e.Eval(val)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			if _, drop := r.(noValue); !drop {
				out[k] = r
			}
		}
		return out, nil
	case []any:
		out := make([]any, 0, len(x))
		for i, val := range x {
			r, err := e.Eval(val)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			if _, drop := r.(noValue); !drop {
				out = append(out, r)
			}
		}
		return out, nil
	default:
		return v, nil
	}
}

func (e *Evaluator) intrinsic(fn string, arg any) (any, error) {
	args := asList(arg)
	switch fn {
	case "Ref":
		return e.ref(str(arg))
	case "Fn::GetAtt":
		if len(args) != 2 {
			return nil, fmt.Errorf("Fn::GetAtt %v: want [Resource, Attribute]", arg)
		}
		return e.getAtt(str(args[0]), str(args[1]))
	case "Fn::If":
		if len(args) != 3 {
			return nil, errors.New("Fn::If wants 3 arguments")
		}
		c, err := e.Condition(str(args[0]))
		if err != nil {
			return nil, err
		}
		if c {
			return e.Eval(args[1])
		}
		return e.Eval(args[2])
	case "Fn::Sub":
		return e.sub(arg)
	case "Fn::Join":
		if len(args) != 2 {
			return nil, errors.New("Fn::Join wants 2 arguments")
		}
		l, err := e.Eval(args[1])
		if err != nil {
			return nil, err
		}
		var parts []string
		for _, p := range asList(l) {
			parts = append(parts, scalarString(p))
		}
		return strings.Join(parts, str(args[0])), nil
	case "Fn::Select":
		if len(args) != 2 {
			return nil, errors.New("Fn::Select wants 2 arguments")
		}
		idx, err := e.Eval(args[0])
		if err != nil {
			return nil, err
		}
		l, err := e.Eval(args[1])
		if err != nil {
			return nil, err
		}
		i, err := strconv.Atoi(scalarString(idx))
		list := asList(l)
		if err != nil || i < 0 || i >= len(list) {
			return nil, fmt.Errorf("Fn::Select index %v out of range", idx)
		}
		return list[i], nil
	case "Fn::Split":
		if len(args) != 2 {
			return nil, errors.New("Fn::Split wants 2 arguments")
		}
		s, err := e.Eval(args[1])
		if err != nil {
			return nil, err
		}
		var out []any
		for p := range strings.SplitSeq(scalarString(s), str(args[0])) {
			out = append(out, p)
		}
		return out, nil
	case "Fn::FindInMap":
		if len(args) != 3 {
			return nil, errors.New("Fn::FindInMap wants 3 arguments")
		}
		var keys [3]string
		for i, a := range args {
			v, err := e.Eval(a)
			if err != nil {
				return nil, err
			}
			keys[i] = scalarString(v)
		}
		v, ok := asMap(asMap(e.T.Mappings[keys[0]])[keys[1]])[keys[2]]
		if !ok {
			return nil, fmt.Errorf("Fn::FindInMap %v: no such entry", keys)
		}
		return v, nil
	case "Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Condition":
		return e.boolean(map[string]any{fn: arg})
	default:
		return nil, fmt.Errorf("intrinsic %s is not supported offline", fn)
	}
}

func (e *Evaluator) ref(name string) (any, error) {
	if name == "AWS::NoValue" {
		return noValue{}, nil
	}
	if strings.HasPrefix(name, "AWS::") {
		if v, ok := e.Pseudo[name]; ok {
			return v, nil
		}
		return Wild, nil
	}
	if v, ok := e.Params[name]; ok {
		return v, nil
	}
	r, ok := e.T.Resources[name]
	if !ok {
		return nil, fmt.Errorf("ref %s: no such parameter or resource", name)
	}
	if !e.Exists(name) {
		return nil, fmt.Errorf("ref %s: resource is not created (condition %s is false)", name, r.Condition)
	}
	prop := func(p string) string {
		v, err := e.Eval(r.Properties[p])
		if err != nil || v == nil {
			return Wild
		}
		return scalarString(v)
	}
	switch r.Type {
	case "AWS::DynamoDB::Table":
		return prop("TableName"), nil
	case "AWS::Kinesis::Stream":
		return prop("Name"), nil
	case "AWS::Logs::LogGroup":
		return prop("LogGroupName"), nil
	case "AWS::ECS::Cluster":
		return prop("ClusterName"), nil
	case "AWS::IAM::Role":
		return prop("RoleName"), nil
	case "AWS::SNS::Topic":
		return e.arn("sns", prop("TopicName")), nil
	case "AWS::ECS::TaskDefinition":
		return e.arn("ecs", "task-definition/"+prop("Family")+":"+Wild), nil
	case "AWS::ECS::Service":
		return e.arn("ecs", "service/"+Wild+"/"+prop("ServiceName")), nil
	default:
		return Wild, nil
	}
}

func (e *Evaluator) getAtt(id, attr string) (any, error) {
	r, ok := e.T.Resources[id]
	if !ok {
		return nil, fmt.Errorf("Fn::GetAtt %s.%s: no such resource", id, attr)
	}
	if !e.Exists(id) {
		return nil, fmt.Errorf("Fn::GetAtt %s.%s: resource is not created", id, attr)
	}
	name, err := e.ref(id)
	if err != nil {
		return nil, err
	}
	n := scalarString(name)
	switch r.Type + "." + attr {
	case "AWS::DynamoDB::Table.Arn":
		return e.arn("dynamodb", "table/"+n), nil
	case "AWS::Kinesis::Stream.Arn":
		return e.arn("kinesis", "stream/"+n), nil
	case "AWS::IAM::Role.Arn":
		return "arn:" + e.Pseudo["AWS::Partition"] + ":iam::" + e.Pseudo["AWS::AccountId"] + ":role/" + n, nil
	case "AWS::Logs::LogGroup.Arn":
		return e.arn("logs", "log-group:"+n+":*"), nil
	case "AWS::ECS::Service.Name":
		v, err := e.Eval(r.Properties["ServiceName"])
		if err != nil || v == nil {
			return Wild, err
		}
		return v, nil
	case "AWS::CloudWatch::Alarm.Arn":
		v, err := e.Eval(r.Properties["AlarmName"])
		if err != nil || v == nil {
			return Wild, err
		}
		return e.arn("cloudwatch", "alarm:"+scalarString(v)), nil
	default:
		return Wild, nil
	}
}

func (e *Evaluator) arn(service, resource string) string {
	return "arn:" + e.Pseudo["AWS::Partition"] + ":" + service + ":" + e.Pseudo["AWS::Region"] + ":" + e.Pseudo["AWS::AccountId"] + ":" + resource
}

var subVar = regexp.MustCompile(`\$\{([^}]*)\}`)

func (e *Evaluator) sub(arg any) (any, error) {
	tmpl, vars := "", map[string]any{}
	switch a := arg.(type) {
	case string:
		tmpl = a
	case []any:
		if len(a) != 2 {
			return nil, errors.New("Fn::Sub wants a string or [string, map]")
		}
		tmpl = str(a[0])
		for k, v := range asMap(a[1]) {
			r, err := e.Eval(v)
			if err != nil {
				return nil, err
			}
			vars[k] = r
		}
	default:
		return nil, errors.New("Fn::Sub wants a string or [string, map]")
	}
	var firstErr error
	out := subVar.ReplaceAllStringFunc(tmpl, func(m string) string {
		name := m[2 : len(m)-1]
		if strings.HasPrefix(name, "!") {
			return "${" + name[1:] + "}"
		}
		var v any
		var err error
		if x, ok := vars[name]; ok {
			v = x
		} else if res, attr, dotted := strings.Cut(name, "."); dotted && !strings.HasPrefix(name, "AWS::") {
			v, err = e.getAtt(res, attr)
		} else {
			v, err = e.ref(name)
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return scalarString(v)
	})
	if firstErr != nil {
		return nil, fmt.Errorf("Fn::Sub: %w", firstErr)
	}
	return out, nil
}

// Matches reports whether a concrete value agrees with an evaluated
// template value, where Wild matches one or more characters.
func Matches(template, concrete string) bool {
	if !strings.Contains(template, Wild) {
		return template == concrete
	}
	parts := strings.Split(template, Wild)
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile("^" + strings.Join(parts, ".+") + "$").MatchString(concrete)
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func asList(v any) []any {
	switch l := v.(type) {
	case []any:
		return l
	case nil:
		return nil
	default:
		return []any{v}
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// scalarString renders a scalar the way CloudFormation passes it to a
// resource: numbers and booleans as their text.
func scalarString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	default:
		return fmt.Sprint(x)
	}
}
