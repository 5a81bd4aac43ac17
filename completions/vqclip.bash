# bash completion for vqclip(1).
# Installed to share/bash-completion/completions/vqclip; to try it from a checkout:
#   source completions/vqclip.bash
# Completes subcommands, each command's long options, the values of enumerated options
# (devices, optimisers, cut methods, augments, ...), model names found in the models folders,
# and files of the right kind for model, image and batch options.
# shellcheck disable=SC2207 # COMPREPLY=($(compgen ...)): words without blanks, as usual here

_vqclip_models() { # _vqclip_models EXT...: model names (file stems) in the models folders
    local d f ext
    for d in "${VQCLIP_MODELS:-}" "${HOME:-}/.cache/vqclip"; do
        [[ -n $d && -d $d ]] || continue
        for ext in "$@"; do
            for f in "$d"/*."$ext"; do
                [[ -e $f ]] || continue
                f=${f##*/}
                printf '%s\n' "${f%."$ext"}"
            done
        done
    done
}

_vqclip_files() { # _vqclip_files CUR 'ext1|ext2' ('' for any file): files, then folders
    local cur=$1 exts=$2 f had_extglob=0
    local IFS=$'\n'
    shopt -q extglob && had_extglob=1
    shopt -s extglob
    for f in $(compgen -f -- "$cur"); do
        if [[ -d $f ]]; then
            COMPREPLY+=("$f") # readline adds the '/' (-o filenames)
        elif [[ -z $exts || ${f,,} == *.@($exts) ]]; then
            COMPREPLY+=("$f")
        fi
    done
    ((had_extglob)) || shopt -u extglob
    compopt -o filenames 2>/dev/null
}

_vqclip_devices() {
    local n=1 i out=(cpu cuda)
    if command -v nvidia-smi >/dev/null 2>&1; then
        n=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
        ((n > 0)) || n=1
    fi
    for ((i = 0; i < n; i++)); do out+=("cuda:$i"); done
    printf '%s\n' "${out[@]}"
}

# _vqclip_value CMD PREV CUR: completes the value of option PREV; returns 1 when PREV takes
# no value (so that options are completed instead).
_vqclip_value() {
    local cmd=$1 prev=$2 cur=$3 images='png|jpg|jpeg|webp|bmp|gif|tga'
    case $cmd:$prev in
    *:--vqgan | *:-vqgan | *:-ckpt | *:--ckpt | *:--vqgan_checkpoint)
        COMPREPLY=($(compgen -W "$(_vqclip_models ckpt safetensors)" -- "$cur"))
        _vqclip_files "$cur" 'ckpt|safetensors' ;;
    *:--vqgan-config | *:-vqgan-config | *:-conf | *:--conf | *:--vqgan_config)
        _vqclip_files "$cur" 'yaml|yml' ;;
    upscale:-m | upscale:--model)
        local names='RealESRGAN_x4plus RealESRGAN_x4plus_anime_6B RealESRGAN_x2plus
            realesr-general-x4v3 realesr-animevideov3'
        COMPREPLY=($(compgen -W "$names $(_vqclip_models pth)" -- "$cur"))
        _vqclip_files "$cur" 'pth|safetensors' ;;
    *:-m | *:--clip | *:-clip | *:--clip_model)
        local names='RN50 RN101 RN50x4 RN50x16 RN50x64 ViT-B/32 ViT-B/16 ViT-L/14 ViT-L/14@336px'
        COMPREPLY=($(compgen -W "$names $(_vqclip_models pt safetensors)" -- "$cur"))
        _vqclip_files "$cur" 'pt|safetensors' ;;
    *:--bpe | *:-bpe) _vqclip_files "$cur" 'gz|json' ;;
    generate:-o | generate:--output | reconstruct:-o | reconstruct:--output | upscale:-o | \
        upscale:--output)
        _vqclip_files "$cur" 'png' ;;
    reconstruct:-i | reconstruct:--input | score:-i | score:--image | upscale:-i | \
        upscale:--input | \
        *:-ii | *:--init-image | *:--init_image | *:--init-blend-image | *:-ip | *:--image-prompts | *:--image_prompts)
        _vqclip_files "$cur" "$images" ;;
    *:--batch | *:-batch)
        COMPREPLY=($(compgen -W "-" -- "$cur"))
        _vqclip_files "$cur" '' ;;
    *:--save-state | *:--resume) _vqclip_files "$cur" '' ;;
    *:--video) _vqclip_files "$cur" 'mp4|mkv|webm|mov' ;;
    *:-vsd | *:--vsd | *:--video-style | *:--video_style_dir)
        _vqclip_files "$cur" "mp4|mkv|webm|mov|avi|gif" ;;
    *:--save-frames)
        local IFS=$'\n'
        COMPREPLY=($(compgen -d -- "$cur"))
        compopt -o filenames 2>/dev/null ;;
    *:--device | *:-device | *:-cd | *:--cd | *:--cuda_device)
        COMPREPLY=($(compgen -W "$(_vqclip_devices)" -- "$cur")) ;;
    *:-opt | *:--opt | *:--optimiser | *:--optimizer)
        COMPREPLY=($(compgen -W "Adam AdamW Adagrad Adamax DiffGrad AdamP RAdam RMSprop" -- "$cur")) ;;
    *:-cutm | *:--cutm | *:--cut-method | *:--cut_method)
        COMPREPLY=($(compgen -W "pooling original latest updatedpooling updated nrupdated" -- "$cur")) ;;
    *:-aug | *:--aug | *:--augments)
        # A comma-separated list: complete the item after the last comma.
        local head='' item=$cur
        [[ $cur == *,* ]] && head=${cur%,*}, && item=${cur##*,}
        COMPREPLY=($(compgen -P "$head" -W "Af Pe Ji Er Sh Gn Ro Hf Cr Re Et Ts none" -- "$item"))
        compopt -o nospace 2>/dev/null ;;
    *:-in | *:--in | *:--init-noise | *:--init_noise)
        COMPREPLY=($(compgen -W "pixels gradient" -- "$cur")) ;;
    *:--init-weight-mode) COMPREPLY=($(compgen -W "seed anchor stepped" -- "$cur")) ;;
    *:--clip-precision) COMPREPLY=($(compgen -W "fp16 fp32" -- "$cur")) ;;
    *:--precision) COMPREPLY=($(compgen -W "exact mixed fast" -- "$cur")) ;;
    *:-est | *:--smoothness-type | *:--smoothness_type)
        COMPREPLY=($(compgen -W "default clipped log" -- "$cur")) ;;
    *:--lr-schedule) COMPREPLY=($(compgen -W "constant step cosine" -- "$cur")) ;;
    generate:-p | generate:--prompts | score:-p | score:--prompt | generate:-s | generate:--size | \
        generate:-i | generate:--iterations | *:-se | *:--save-every | *:--save_every | \
        *:--seed | *:-sd | *:--threads | *:-lr | *:--learning-rate | *:-cutn | *:--cutn | \
        *:-cutp | *:--cut-pow | *:--cut-noise | *:-iw | *:--init-weight | *:--noise-prompt | \
        *:-nps | *:-npw | *:-cpe | *:--change-prompt-every | *:--frame-every | \
        *:--variations | *:--shard | *:--shard-count | *:--video-fps | *:--mse-decay-every | *:--mse-epochs | \
        *:--zoom-every | *:--zoom-start | *:--zoom-scale | *:--zoom-shift-x | *:--zoom-shift-y | \
        *:-zse | *:-zs | *:-zsc | *:-zsx | *:-zsy | *:--zoom_save_every | *:--zoom_start | \
        *:--zoom_scale | *:--zoom_shift_x | *:--zoom_shift_y | *:-vl | *:--video_length | \
        *:-ofps | *:--output_video_fps | *:-ifps | *:--input_video_fps | *:--zoom-schedule | \
        *:--angle-schedule | *:--shift-x-schedule | *:--shift-y-schedule | \
        *:-smo | *:--smoothness | *:-sat | \
        *:--saturation | *:--symmetry | *:--symmetry_weight | *:--symmetry-ud | *:--palette | \
        *:--palette-weight | *:--palette_weight | *:--lr-step-every | *:--lr-step-factor | \
        *:--lr-floor | *:--stop-window | *:--stop-fraction | *:--ema | *:--upscale | *:--upscale-tile | \
        *:--video-style-blend | *:--init-blend | *:--max-memory)
        COMPREPLY=() ;; # free-form values
    *) return 1 ;;
    esac
    return 0
}

_vqclip() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev='' cmd=generate i
    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
    local commands='reconstruct info tokenize score upscale doctor'
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
        reconstruct | info | tokenize | score | upscale | doctor)
            ((i == 1)) && cmd=${COMP_WORDS[i]} ;;
        esac
    done
    COMPREPLY=()
    _vqclip_value "$cmd" "$prev" "$cur" && return 0

    local opts
    case $cmd in
    generate)
        opts='--prompts --image-prompts --noise-prompt --change-prompt-every --output --size
            --iterations --save-every --save-frames --frame-every --video --video-fps --seed
            --zoom-every --zoom-start --zoom-scale --zoom-shift-x --zoom-shift-y
            --zoom-schedule --angle-schedule --shift-x-schedule --shift-y-schedule --upscale
            --upscale-tile
            --save-state --resume
            --json --quiet --batch --skip-existing --variations --shard --shard-count --vqgan
            --vqgan-config --clip --bpe --init-image --init-noise --init-weight
            --init-weight-mode --mse-decay-every --mse-epochs --learning-rate --optimiser
            --cut-method --cutn --cut-pow --cut-noise --augments --device --clip-precision --precision
            --threads --deterministic --low-memory --no-auto-low-memory --max-memory --profile
            --allow-http --help --version
            --list-options
            --image_prompts --noise_prompt_seeds --noise_prompt_weights --change_prompt_every
            --save_every --vqgan_checkpoint --vqgan_config --clip_model --init_image
            --init_noise --init_weight --learning_rate --optimizer --cut_method --num_cuts --cuts
            --cut_power --cuda_device --zoom_save_every --zoom_start --zoom_scale --zoom_shift_x
            --zoom_shift_y --zoom_video --video_length --output_video_fps --input_video_fps
            --smoothness --smoothness-type --saturation --symmetry --symmetry-ud --palette
            --palette-weight --lr-schedule --lr-step-every --lr-step-factor --lr-floor
            --stop-window --stop-fraction --ema --smoothness_type --symmetry_weight
            --palette_weight --video-style --video-style-blend --video_style_dir
            --init-blend-image --init-blend'
        # generate.py's one-dash spellings, offered once a single dash is typed
        [[ $cur == -* && $cur != --* ]] && opts+=' -p -o -s -i -m -q -ip -ii -in -iw -se -lr
            -opt -cutm -cutn -cutp -aug -cd -sd -cpe -nps -npw -conf -ckpt -d -vid -zvid -vl -ofps
            -ifps -zse -zs -zsc -zsx -zsy -smo -est -sat -vsd'
        ;;
    reconstruct) opts='--vqgan --vqgan-config --input --output --resize --device --help' ;;
    info) opts='--vqgan --vqgan-config --clip --json --help' ;;
    tokenize) opts='--bpe --context --help' ;;
    score) opts='--clip --bpe --image --prompt --json --device --help' ;;
    upscale)
        opts='--model --input --output --tile --tile-pad --pre-pad --outscale --fp32 --device
            --help'
        ;;
    doctor) opts='--json --threads --no-bench --help' ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    elif [[ $cmd == generate && $COMP_CWORD -eq 1 ]]; then
        COMPREPLY=($(compgen -W "$commands" -- "$cur"))
    elif [[ $cmd == tokenize ]]; then
        COMPREPLY=() # free text
    fi
    return 0
}

complete -F _vqclip vqclip
