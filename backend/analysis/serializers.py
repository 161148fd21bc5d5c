from rest_framework import serializers

from archive.dicom import is_valid_uid

from .models import AnalysisJob


def _uid(value: str) -> str:
    if not is_valid_uid(value, lenient=True):
        raise serializers.ValidationError("Not a valid DICOM UID (digits and dots, at most 64 characters).")
    return value


class JobSerializer(serializers.ModelSerializer):
    class Meta:
        model = AnalysisJob
        fields = [
            "id", "study_instance_uid", "series_instance_uid", "model_name", "status", "progress", "stage",
            "reason", "trigger", "attempts", "created", "started", "finished", "result", "cancel_requested",
        ]
        read_only_fields = fields

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if data.get("status") == "completed" and data.get("result"):
            from .readback import complete_result

            data["result"] = complete_result(instance.model_name, instance.series_instance_uid, data["result"])
        return data


class SubmitSerializer(serializers.Serializer):
    study_instance_uid = serializers.CharField(max_length=64, validators=[_uid])
    series_instance_uid = serializers.CharField(max_length=64, required=False, validators=[_uid])
    model = serializers.CharField(max_length=64)
