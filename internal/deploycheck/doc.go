// Package deploycheck verifies the deployment files under deploy/ offline:
// the CloudFormation template (decoded with its intrinsic functions and
// evaluated for a parameter set), the raw ECS task-definition and service
// JSON (strictly decoded into the aws-sdk-go-v2 ECS input types, enum
// values checked, the SDK's own input validation run without sending
// anything), their agreement with the template, and the task role's IAM
// actions against the AWS operations the code actually calls (found by
// reflecting over the SDK clients and parsing the repository's and the
// Kinesis engine's source).
//
// It holds no production code; its tests run in `make test`.
package deploycheck
