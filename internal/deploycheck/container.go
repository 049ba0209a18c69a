package deploycheck

import (
	"encoding/json"
	"fmt"
	"slices"
)

// Container is what ECS hands the consumer process: its environment and
// the names of the variables it fills from secrets at task start.
type Container struct {
	Env     map[string]string
	Secrets []string
	Command []string // health check command
}

// Environ returns Env as "NAME=value" entries, sorted (os.Environ shape).
func (c Container) Environ() []string {
	out := make([]string, 0, len(c.Env))
	for k, v := range c.Env {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// TemplateContainer renders the first container of the template's task
// definition resource id for the evaluator's parameters.
func TemplateContainer(e *Evaluator, id string) (Container, error) {
	p, err := e.Properties(id)
	if err != nil {
		return Container{}, err
	}
	defs := asList(p["ContainerDefinitions"])
	if len(defs) == 0 {
		return Container{}, fmt.Errorf("%s: no container definitions", id)
	}
	return containerFrom(asMap(defs[0]), "Environment", "Name", "Value", "Secrets", "HealthCheck", "Command")
}

// TaskDefContainer reads the first container of a task-definition JSON
// file (register-task-definition input, lower-camel keys).
func TaskDefContainer(data []byte) (Container, error) {
	var td map[string]any
	if err := json.Unmarshal(data, &td); err != nil {
		return Container{}, err
	}
	defs := asList(td["containerDefinitions"])
	if len(defs) == 0 {
		return Container{}, fmt.Errorf("task definition: no container definitions")
	}
	return containerFrom(asMap(defs[0]), "environment", "name", "value", "secrets", "healthCheck", "command")
}

func containerFrom(def map[string]any, envKey, nameKey, valueKey, secretsKey, hcKey, cmdKey string) (Container, error) {
	c := Container{Env: map[string]string{}}
	for _, kv := range asList(def[envKey]) {
		m := asMap(kv)
		name := str(m[nameKey])
		if name == "" {
			return c, fmt.Errorf("environment entry without a name: %v", kv)
		}
		if _, dup := c.Env[name]; dup {
			return c, fmt.Errorf("environment variable %s set twice", name)
		}
		c.Env[name] = scalarString(m[valueKey])
	}
	for _, s := range asList(def[secretsKey]) {
		c.Secrets = append(c.Secrets, str(asMap(s)[nameKey]))
	}
	for _, a := range asList(asMap(def[hcKey])[cmdKey]) {
		c.Command = append(c.Command, str(a))
	}
	return c, nil
}
