package tables

import (
	"errors"
	"fmt"
	"net/http"
)

// APIError is a DynamoDB service error: the code the SDK maps to its typed error, the
// message, the HTTP status and, for ConditionalCheckFailedException with
// ReturnValuesOnConditionCheckFailure=ALL_OLD, the item as it was.
type APIError struct {
	// Code is the error's type name, e.g. "ValidationException".
	Code string
	// Message is the human-readable message.
	Message string
	// Status is the HTTP status code.
	Status int
	// Item is the existing item returned with a failed condition, or nil.
	Item Item
}

// Error returns "Code: Message".
func (e *APIError) Error() string { return e.Code + ": " + e.Message }

// The service's error codes.
const (
	codeValidation          = "ValidationException"
	codeSerialization       = "SerializationException"
	codeResourceNotFound    = "ResourceNotFoundException"
	codeResourceInUse       = "ResourceInUseException"
	codeConditionalCheck    = "ConditionalCheckFailedException"
	codeUnknownOperation    = "UnknownOperationException"
	codeLimitExceeded       = "LimitExceededException"
	codeItemCollectionLimit = "ItemCollectionSizeLimitExceededException"
)

func validationf(format string, args ...any) *APIError {
	return &APIError{Code: codeValidation, Message: fmt.Sprintf(format, args...), Status: http.StatusBadRequest}
}

func serializationf(format string, args ...any) *APIError {
	return &APIError{Code: codeSerialization, Message: fmt.Sprintf(format, args...), Status: http.StatusBadRequest}
}

func notFound() *APIError {
	return &APIError{Code: codeResourceNotFound, Message: "Requested resource not found", Status: http.StatusBadRequest}
}

func inUse(format string, args ...any) *APIError {
	return &APIError{Code: codeResourceInUse, Message: fmt.Sprintf(format, args...), Status: http.StatusBadRequest}
}

func conditionFailed(old Item) *APIError {
	return &APIError{Code: codeConditionalCheck, Message: "The conditional request failed", Status: http.StatusBadRequest, Item: old}
}

func asValidation(err error) (*APIError, bool) {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae, true
	}
	return nil, false
}

var (
	errNumberFormat    = validationf("A value provided cannot be converted into a number")
	errNumberPrecision = validationf("Attempting to store more than 38 significant digits in a Number")
	errNumberOverflow  = validationf("Number overflow. Attempting to store a number with magnitude larger than supported range")
	errNumberUnderflow = validationf("Number underflow. Attempting to store a number with magnitude smaller than supported range")
	errItemTooLarge    = validationf("Item size has exceeded the maximum allowed size")
	errKeyMismatch     = validationf("The provided key element does not match the schema")
	errOperandType     = validationf("An operand in the update expression has an incorrect data type")
	errBadUpdatePath   = validationf("The document path provided in the update expression is invalid for update")
)
