module {{name}}

go 1.24

require vecron.local/sdk v0.0.0

replace vecron.local/sdk => ./vecron-sdk
