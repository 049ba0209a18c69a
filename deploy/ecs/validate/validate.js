#!/usr/bin/env node
// Validates CloudFormation templates offline with @aws/cloudformation-validate
// (bundled resource schemas + cfn-lint rules, no AWS calls).
//
// usage: node validate.js TEMPLATE...
// Every diagnostic at INFO or above fails the run: warnings are failures
// here, and a finding that is really wanted is excluded below with a reason.
// The last line is machine-readable for internal/deploycheck:
//   RESULT files=N diagnostics=N
'use strict';

const path = require('path');

const modDir = process.env.CFN_VALIDATE_MODULES;
if (!modDir) {
    console.error('CFN_VALIDATE_MODULES is not set (run deploy/ecs/validate-template.sh)');
    process.exit(2);
}
const cfv = require(path.join(modDir, '@aws/cloudformation-validate'));

// Findings switched off on purpose, by rule id. Keep this list short and
// say why; everything else fails.
const EXCLUDE = [];

const files = process.argv.slice(2);
if (files.length === 0) {
    console.error('usage: validate.js TEMPLATE...');
    process.exit(2);
}

const engine = new cfv.RegoEngine();
let total = 0;
let failed = false;
try {
    for (const f of files) {
        const report = engine.validateStandard(new cfv.TemplateFile(f), {
            severityLevel: 'INFO',
            strict: true,
            exclude: { ids: EXCLUDE.map((e) => e.id) },
        });
        if (report.status !== 'OK') {
            console.log(`${f}: validation status ${report.status}`);
            failed = true;
        }
        for (const d of report.diagnostics) {
            total++;
            const where = d.entity ? `${d.entity.logicalId}${d.propertyPath ? '.' + d.propertyPath : ''}` : d.propertyPath || '';
            console.log(`${f}:${d.startLine ?? 0}:${d.startColumn ?? 0}: [${d.severity}] ${d.ruleId} ${where}: ${d.message}`);
        }
    }
} finally {
    engine.free();
}
console.log(`RESULT files=${files.length} diagnostics=${total} engine=${cfv.version()}`);
process.exit(failed || total > 0 ? 1 : 0);
