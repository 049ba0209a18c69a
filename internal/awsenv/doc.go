// Package awsenv loads the AWS SDK configuration shared by the consumer and
// producer binaries.
//
// Endpoints need no special handling: config.LoadDefaultConfig honours
// AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>, which is how the local
// stack (scripts/localstack env) and real AWS use the same code path.
package awsenv
