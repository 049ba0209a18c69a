package deploycheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/smithy-go/middleware"
)

// DecodeStrict decodes CLI-style JSON (the --cli-input-json shape of
// `aws ecs register-task-definition` / `create-service`) into out, a
// pointer to an aws-sdk-go-v2 input struct, and rejects what the AWS CLI
// would reject.
//
// The SDK structs carry no json tags; their Go field names are the API
// member names with the first letter upper-cased (containerDefinitions ->
// ContainerDefinitions). encoding/json matches field names
// case-insensitively, so DisallowUnknownFields alone would accept
// "ContainerDefinitions" or "CONTAINERDEFINITIONS", which the CLI rejects.
// DecodeStrict therefore first walks the raw JSON alongside the Go type and
// requires every object key to be exactly the member name (field name with
// a lower-case first letter); map-typed fields (log options, labels) take
// any key. Members listed in required (see RequiredMembers) must be
// present: the SDK's validation cannot see a missing required number or
// enum that is not a pointer (Ulimit.softLimit decodes to 0). Then it
// decodes with DisallowUnknownFields.
func DecodeStrict(data []byte, out any, required map[string][]string) error {
	rv := reflect.ValueOf(out)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return errors.New("decode: out must be a non-nil pointer")
	}
	var raw any
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&raw); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if errs := checkMembers(raw, rv.Type().Elem(), "$", required); len(errs) > 0 {
		return fmt.Errorf("decode: %s", strings.Join(errs, "; "))
	}
	d = json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(out); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if d.More() {
		return errors.New("decode: trailing data after the JSON value")
	}
	return nil
}

func checkMembers(raw any, t reflect.Type, path string, required map[string][]string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var errs []string
	switch v := raw.(type) {
	case map[string]any:
		switch t.Kind() {
		case reflect.Map:
			for _, k := range sortedKeys(v) {
				errs = append(errs, checkMembers(v[k], t.Elem(), path+"."+k, required)...)
			}
		case reflect.Struct:
			for _, f := range required[typeKey(t)] {
				if _, ok := v[lowerFirst(f)]; !ok {
					errs = append(errs, fmt.Sprintf("%s: required member %s missing", path, lowerFirst(f)))
				}
			}
			for _, k := range sortedKeys(v) {
				f, ok := t.FieldByName(upperFirst(k))
				if !ok || !f.IsExported() || k != lowerFirst(f.Name) {
					errs = append(errs, fmt.Sprintf("%s.%s: unknown member for %s", path, k, t.Name()))
					continue
				}
				errs = append(errs, checkMembers(v[k], f.Type, path+"."+k, required)...)
			}
		default:
			errs = append(errs, fmt.Sprintf("%s: object where %s is expected", path, t))
		}
	case []any:
		if t.Kind() != reflect.Slice {
			return []string{fmt.Sprintf("%s: array where %s is expected", path, t)}
		}
		for i, e := range v {
			errs = append(errs, checkMembers(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), required)...)
		}
	}
	return errs
}

func typeKey(t reflect.Type) string { return path.Base(t.PkgPath()) + "." + t.Name() }

// RequiredMembers reads the SDK source in dirs (e.g. service/ecs and
// service/ecs/types) and returns, per struct ("ecs.CreateServiceInput",
// "types.Ulimit"), the fields documented "This member is required.": the
// model's required trait, which the generated structs keep only as a
// comment.
func RequiredMembers(dirs ...string) (map[string][]string, error) {
	req := map[string][]string{}
	fset := token.NewFileSet()
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("required members: %w", err)
		}
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.ParseComments|parser.SkipObjectResolution)
			if err != nil {
				return nil, fmt.Errorf("required members: %w", err)
			}
			for _, d := range f.Decls {
				gd, ok := d.(*ast.GenDecl)
				if !ok {
					continue
				}
				for _, sp := range gd.Specs {
					ts, ok := sp.(*ast.TypeSpec)
					if !ok {
						continue
					}
					st, ok := ts.Type.(*ast.StructType)
					if !ok {
						continue
					}
					for _, fl := range st.Fields.List {
						if fl.Doc == nil || !strings.Contains(fl.Doc.Text(), "This member is required.") {
							continue
						}
						for _, n := range fl.Names {
							key := f.Name.Name + "." + ts.Name.Name
							req[key] = append(req[key], n.Name)
						}
					}
				}
			}
		}
	}
	if len(req) == 0 {
		return nil, fmt.Errorf("required members: none found in %v", dirs)
	}
	return req, nil
}

// CheckEnums walks v and reports every enum-typed value (a type with a
// Values() method, as the SDK generates for API enums) that is not one of
// its type's Values(). The SDK itself accepts any string there.
func CheckEnums(v any) []string {
	var errs []string
	walkEnums(reflect.ValueOf(v), "$", &errs)
	return errs
}

func walkEnums(v reflect.Value, path string, errs *[]string) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walkEnums(v.Elem(), path, errs)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if f.IsExported() {
				walkEnums(v.Field(i), path+"."+lowerFirst(f.Name), errs)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			walkEnums(v.Index(i), fmt.Sprintf("%s[%d]", path, i), errs)
		}
	case reflect.Map:
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
		for _, k := range keys {
			walkEnums(v.MapIndex(k), fmt.Sprintf("%s[%v]", path, k), errs)
		}
	case reflect.String:
		values := v.MethodByName("Values")
		if !values.IsValid() || v.String() == "" {
			return
		}
		allowed := values.Call(nil)[0]
		var names []string
		for i := range allowed.Len() {
			names = append(names, allowed.Index(i).String())
		}
		if !slices.Contains(names, v.String()) {
			*errs = append(*errs, fmt.Sprintf("%s: %q is not a %s (want one of %s)",
				path, v.String(), v.Type().Name(), strings.Join(names, ", ")))
		}
	}
}

// errStopped ends an offline call right after the SDK's input validation.
var errStopped = errors.New("deploycheck: stopped after input validation")

// OfflineECS returns an ECS client whose calls run the SDK's own
// Initialize-step middleware (including the generated input validation)
// and then stop before anything is serialized or sent. Its HTTP client
// fails loudly if a request reaches it anyway.
func OfflineECS() *ecs.Client {
	stop := middleware.SerializeMiddlewareFunc("deploycheck.stop",
		func(context.Context, middleware.SerializeInput, middleware.SerializeHandler) (middleware.SerializeOutput, middleware.Metadata, error) {
			return middleware.SerializeOutput{}, middleware.Metadata{}, errStopped
		})
	return ecs.New(ecs.Options{
		Region:      "us-east-1",
		Credentials: aws.AnonymousCredentials{},
		HTTPClient:  noNetwork{},
		APIOptions: []func(*middleware.Stack) error{
			func(s *middleware.Stack) error { return s.Serialize.Add(stop, middleware.Before) },
		},
	})
}

type noNetwork struct{}

// errNetwork is returned if an offline call ever reaches the transport.
var errNetwork = errors.New("deploycheck: offline ECS client reached the network")

func (noNetwork) Do(*http.Request) (*http.Response, error) { return nil, errNetwork }

// Validated turns the result of an OfflineECS call into the validation
// outcome: nil when the SDK accepted the input, its error otherwise.
func Validated(err error) error {
	if errors.Is(err, errStopped) {
		return nil
	}
	if err == nil {
		return errors.New("deploycheck: offline call returned without stopping")
	}
	return err
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func upperFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}

func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToLower(r)) + s[n:]
}
